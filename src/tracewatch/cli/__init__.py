"""The ``tracewatch`` command line: subcommands over the library. Nothing imports this package."""
