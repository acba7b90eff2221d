"""Outputs for people and programs: text lines, tables, LAMI JSON, CSV.

May import :mod:`tracewatch.ctf` and the analyses; never the CLI.
"""
