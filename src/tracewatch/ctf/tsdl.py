"""TSDL (CTF 1.8 metadata language) lexer and parser, producing :mod:`tracewatch.ctf.types`.

Owns the grammar: typealias / typedef, integer / floating_point / string / enum / struct /
variant types, arrays and sequences, the trace / env / clock / stream / event / callsite
blocks, scoped type names, and the validation a conforming reader must do (a metadata
text that breaks a rule is refused with :class:`~tracewatch.errors.MetadataError`).
Imports only :mod:`tracewatch.ctf.types` and :mod:`tracewatch.errors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import MetadataError
from .types import (
    ArrayType,
    ClockClass,
    EnumType,
    EventClass,
    FieldType,
    FloatType,
    IntType,
    Mapping,
    SequenceType,
    StreamClass,
    StringType,
    StructType,
    TraceClass,
    VariantType,
)

__all__ = ["parse_tsdl"]

KEYWORDS = {
    "align", "callsite", "const", "char", "clock", "double", "enum", "env", "event",
    "floating_point", "float", "integer", "int", "long", "short", "signed", "stream", "string",
    "struct", "trace", "typealias", "typedef", "unsigned", "variant", "void", "_Bool",
    "_Complex", "_Imaginary",
}
# Keywords that may start a type name made of several words (``unsigned long``).
TYPE_WORDS = {"const", "char", "double", "float", "int", "long", "short", "signed", "unsigned",
              "void", "_Bool", "_Complex", "_Imaginary"}

MAX_ALIGN = 1 << 30  # bits; larger alignments are refused as nonsense
MAX_ARRAY = 1 << 32
MAX_INT_BITS = 1 << 16

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<ucomment>/\*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<ustring>")
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[uUlL]*(?![0-9A-Za-z_]))
  | (?P<badnumber>[0-9][0-9A-Za-z_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>:=|\.\.\.|->|[{}()\[\];,=:.<>+\-*])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass
class Token:
    kind: str  # "ident", "number", "string", "char", "punct", "eof"
    text: str
    line: int
    value: Any = None


def _unescape(body: str, line: int) -> str:
    out = []
    i = 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
              "b": "\b", "f": "\f", "v": "\v", "?": "?", "0": "\0"}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise MetadataError("unterminated escape in string literal", line=line)
        e = body[i]
        if e == "x":
            j = i + 1
            while j < len(body) - 1 and body[j] == "0" and body[j + 1] in "0123456789abcdefABCDEF":
                j += 1  # leading zeros do not count among the two hex digits
            i = j - 1
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 1:])
            if not m:
                raise MetadataError("bad \\x escape in string literal", line=line)
            out.append(chr(int(m.group(0), 16)))
            i += 1 + len(m.group(0))
        elif e in "01234567" and re.match(r"[0-7]{1,3}", body[i:]):
            m = re.match(r"[0-7]{1,3}", body[i:])
            assert m is not None
            out.append(chr(int(m.group(0), 8)))
            i += len(m.group(0))
        elif e in simple:
            out.append(simple[e])
            i += 1
        else:
            raise MetadataError(f"unknown escape \\{e} in string literal", line=line)
    text = "".join(out)
    nul = text.find("\0")
    return text[:nul] if nul >= 0 else text


def tokenize(text: str) -> list[Token]:
    if "\0" in text:
        raise MetadataError("metadata text contains a NUL character", line=text[: text.index("\0")].count("\n") + 1)
    tokens: list[Token] = []
    pos = 0
    line = 1
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise MetadataError(f"unexpected character {text[pos]!r}", line=line)
        kind = m.lastgroup
        s = m.group(0)
        if kind == "ucomment":
            raise MetadataError("unterminated comment", line=line)
        if kind == "ustring":
            raise MetadataError("unterminated string literal", line=line)
        if kind == "badnumber":
            raise MetadataError(f"malformed integer literal {s!r}", line=line)
        if kind == "number":
            digits = s.rstrip("uUlL")
            if digits.lower().startswith("0x"):
                val = int(digits, 16)
            elif digits.startswith("0") and len(digits) > 1:
                val = int(digits, 8)
            else:
                val = int(digits)
            tokens.append(Token("number", s, line, val))
        elif kind == "string":
            tokens.append(Token("string", s, line, _unescape(s[1:-1], line)))
        elif kind == "char":
            tokens.append(Token("char", s, line, _unescape(s[1:-1], line)))
        elif kind == "ident":
            tokens.append(Token("ident", s, line))
        elif kind == "punct":
            tokens.append(Token("punct", s, line))
        line += s.count("\n")
        pos = m.end()
    tokens.append(Token("eof", "", line))
    return tokens


_HEADER_RE = re.compile(r"/\*\s*CTF\s+(\d+)\.(\d+)")


def check_version_header(text: str) -> None:
    """A plain metadata text must start with ``/* CTF 1.8`` (major 1)."""
    m = _HEADER_RE.match(text)
    if not m:
        raise MetadataError("metadata does not start with a '/* CTF 1.8' header", line=1)
    major, minor = m.group(1), m.group(2)
    if len(major) > 9 or len(minor) > 9 or int(major) != 1:
        raise MetadataError(f"unsupported CTF version {major}.{minor}", line=1)


# -- parser -------------------------------------------------------------------------------------

_Value = Any  # int | str | list[str] (dotted identifier) | FieldType


class _Str(str):
    """A value written as a quoted string literal (not an identifier)."""


class _Scope:
    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.aliases: dict[str, FieldType] = {}
        self.structs: dict[str, StructType] = {}
        self.variants: dict[str, VariantType] = {}
        self.enums: dict[str, EnumType] = {}

    def find(self, kind: str, name: str) -> Any:
        s: _Scope | None = self
        while s is not None:
            table = getattr(s, kind)
            if name in table:
                return table[name]
            s = s.parent
        return None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.scope = _Scope(None)
        self.trace = TraceClass()
        self.trace_seen = False
        self.byte_order_given = False
        self.streams: dict[int, StreamClass] = {}
        self.events: list[EventClass] = []
        self.in_progress: set[int] = set()
        self.struct_stack: list[list[tuple[str, FieldType]]] = []

    def anchor_of(self, path: str) -> list[tuple[str, FieldType]] | None:
        """The innermost field list under construction whose fields so far define ``path``'s head."""
        head = path.split(".")[0]
        for fields in reversed(self.struct_stack):
            if any(n == head for n, _ in fields):
                return fields
        return None

    # token helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def err(self, msg: str, tok: Token | None = None) -> MetadataError:
        t = tok or self.tok
        return MetadataError(msg, line=t.line)

    def next(self) -> Token:
        t = self.tok
        if t.kind == "eof":
            raise self.err("unexpected end of metadata")
        self.i += 1
        return t

    def is_punct(self, p: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == p

    def is_ident(self, word: str | None = None) -> bool:
        return self.tok.kind == "ident" and (word is None or self.tok.text == word)

    def expect(self, p: str) -> Token:
        if not self.is_punct(p):
            got = self.tok.text or "end of metadata"
            raise self.err(f"expected '{p}', found '{got}'")
        return self.next()

    def ident(self) -> str:
        if self.tok.kind != "ident":
            raise self.err(f"expected an identifier, found '{self.tok.text or 'end of metadata'}'")
        return self.next().text

    # top level
    def parse(self) -> TraceClass:
        while self.tok.kind != "eof":
            self.top_declaration()
        return self.finish()

    def top_declaration(self) -> None:
        t = self.tok
        if t.kind != "ident":
            raise self.err(f"unexpected '{t.text}' at top level")
        w = t.text
        if w == "typealias":
            self.typealias()
        elif w == "typedef":
            self.typedef()
        elif w in ("trace", "env", "clock", "stream", "event", "callsite") and self.peek().text == "{":
            self.next()
            self.block(w)
        elif w in ("struct", "variant", "enum", "integer", "floating_point", "string"):
            self.type_specifier()
            if self.is_ident() and self.tok.text in ("struct", "variant", "enum", "typealias",
                                                     "typedef", "trace", "event", "stream"):
                return  # babeltrace accepts a missing ';' after a named type definition
            self.expect(";")
        else:
            raise self.err(f"unexpected '{w}' at top level")

    # blocks
    def block(self, kind: str) -> None:
        self.expect("{")
        attrs: dict[str, _Value] = {}
        self.scope = _Scope(self.scope)
        try:
            while not self.is_punct("}"):
                if self.is_ident("typealias"):
                    self.typealias()
                    continue
                if self.is_ident("typedef"):
                    self.typedef()
                    continue
                if self.is_ident() and self.tok.text in ("struct", "variant", "enum") and self._is_type_definition():
                    self.type_specifier()
                    self.expect(";")
                    continue
                key_tok = self.tok
                key = self.dotted_key()
                if self.is_punct(":="):
                    self.next()
                    value: _Value = self.type_specifier()
                    # a declarator-less field type; arrays are not allowed here
                elif self.is_punct("="):
                    self.next()
                    value = self.unary_value()
                else:
                    raise self.err(f"expected '=' or ':=' after '{key}'")
                self.expect(";")
                if key in attrs:
                    raise self.err(f"duplicate attribute '{key}' in {kind} block", key_tok)
                attrs[key] = value
            self.expect("}")
            self.expect(";")
        finally:
            assert self.scope.parent is not None
            self.scope = self.scope.parent
        getattr(self, f"on_{kind}")(attrs, key_tok if attrs else self.tok)

    def _is_type_definition(self) -> bool:
        # "struct name { ... };" style definitions inside a block
        j = self.i + 1
        while self.toks[j].kind == "ident":
            j += 1
        return self.toks[j].text in ("{", ":", "<")

    def dotted_key(self) -> str:
        parts = [self.ident()]
        while self.is_punct("."):
            self.next()
            parts.append(self.ident())
        return ".".join(parts)

    def unary_value(self) -> _Value:
        """An attribute value: integer (with sign), string, char or dotted identifier."""
        t = self.tok
        if t.kind == "punct" and t.text in ("-", "+"):
            self.next()
            if self.tok.kind != "number":
                raise self.err(f"expected a number after '{t.text}'")
            v = self.next().value
            val: _Value = -v if t.text == "-" else v
        elif t.kind == "number":
            val = self.next().value
        elif t.kind == "string":
            val = _Str(self.next().value)
            if self.tok.kind == "string":
                raise self.err("string literals cannot be concatenated")
            return val
        elif t.kind == "char":
            val = self.next().value
        elif t.kind == "ident":
            parts = [self.next().text]
            while self.is_punct(".") or self.is_punct("->"):
                self.next()
                parts.append(self.ident())
            val = parts if len(parts) > 1 else parts[0]
        else:
            raise self.err(f"unexpected '{t.text or 'end of metadata'}' as a value")
        if self.tok.kind in ("number", "string", "ident") :
            raise self.err(f"unexpected '{self.tok.text}' after value")
        return val

    # type aliases
    def typealias(self) -> None:
        self.next()  # typealias
        target = self.type_specifier()
        target = self.abstract_declarator_suffix(target)
        self.expect(":=")
        words = []
        while self.tok.kind == "ident":
            words.append(self.next().text)
        if not words:
            raise self.err("typealias without a name")
        # "typealias T := name[2]" is not valid CTF; a trailing pointer star is ignored
        while self.is_punct("*"):
            self.next()
        self.expect(";")
        name = " ".join(words)
        if len(words) == 1 and name in KEYWORDS - TYPE_WORDS:
            raise self.err(f"typealias name '{name}' is a reserved keyword")
        if name in self.scope.aliases:
            raise self.err(f"duplicate type name '{name}'")
        self.scope.aliases[name] = target

    def typedef(self) -> None:
        self.next()
        base = self.type_specifier()
        while True:
            name, t = self.declarator(base)
            if name in KEYWORDS:
                raise self.err(f"typedef name '{name}' is a reserved keyword")
            if name in self.scope.aliases:
                raise self.err(f"duplicate type name '{name}'")
            self.scope.aliases[name] = t
            if self.is_punct(","):
                self.next()
                continue
            break
        self.expect(";")

    def abstract_declarator_suffix(self, t: FieldType) -> FieldType:
        dims = []
        while self.is_punct("["):
            dims.append(self.array_length())
        return self.apply_dims(t, dims)

    def apply_dims(self, t: FieldType, dims: list[int | str]) -> FieldType:
        for d in reversed(dims):
            if isinstance(d, int):
                t = ArrayType(t, d)
            else:
                anchor = self.anchor_of(d)
                if anchor is None and not self.struct_stack and not _is_absolute(d):
                    raise self.err(f"sequence length '{d}' refers to no field (declared outside any struct)")
                t = SequenceType(t, d, anchor)
        return t

    def array_length(self) -> int | str:
        self.expect("[")
        t = self.tok
        if t.kind == "number":
            self.next()
            length: int | str = int(t.value)
            if int(t.value) > MAX_ARRAY:
                raise self.err(f"array length {length} is too large")
        elif t.kind == "punct" and t.text == "-":
            raise self.err("negative array length")
        elif t.kind == "ident":
            if t.text in KEYWORDS:
                raise self.err(f"array length '{t.text}' is a keyword, not a field")
            if self.scope.find("aliases", t.text) is not None and self.peek().text == "]":
                raise self.err(f"array length '{t.text}' is a type, not a field")
            parts = [self.next().text]
            while self.is_punct("."):
                self.next()
                parts.append(self.ident())
            length = ".".join(parts)
        else:
            raise self.err(f"bad array length '{t.text or ']'}'")
        self.expect("]")
        return length

    def declarator(self, base: FieldType) -> tuple[str, FieldType]:
        while self.is_punct("*"):
            self.next()
        name = self.ident()
        dims = []
        while self.is_punct("["):
            dims.append(self.array_length())
        return name, self.apply_dims(base, dims)

    # type specifiers
    def type_specifier(self) -> FieldType:
        t = self.tok
        if t.kind != "ident":
            raise self.err(f"expected a type, found '{t.text or 'end of metadata'}'")
        w = t.text
        if w == "integer":
            self.next()
            return self.integer_type(self.attribute_block())
        if w == "floating_point":
            self.next()
            return self.float_type(self.attribute_block())
        if w == "string":
            self.next()
            enc = "UTF8"
            if self.is_punct("{"):
                attrs = self.attribute_block()
                for k, v in attrs.items():
                    if k != "encoding":
                        raise self.err(f"unknown string attribute '{k}'")
                    enc = self.encoding(v)
            return StringType(enc)
        if w == "struct":
            self.next()
            return self.struct_type()
        if w == "variant":
            self.next()
            return self.variant_type()
        if w == "enum":
            self.next()
            return self.enum_type()
        # a named type, possibly several words
        words = [self.next().text]
        while self.tok.kind == "ident" and (words[-1] in TYPE_WORDS and self.tok.text in TYPE_WORDS):
            words.append(self.next().text)
        name = " ".join(words)
        found = self.scope.find("aliases", name)
        if found is None:
            raise self.err(f"unknown type '{name}'", t)
        return found

    def attribute_block(self) -> dict[str, _Value]:
        self.expect("{")
        attrs: dict[str, _Value] = {}
        while not self.is_punct("}"):
            key = self.dotted_key()
            self.expect("=")
            if key in attrs:
                raise self.err(f"duplicate attribute '{key}'")
            attrs[key] = self.unary_value()
            self.expect(";")
        self.expect("}")
        return attrs

    def int_attr(self, attrs: dict[str, _Value], key: str, what: str) -> int | None:
        if key not in attrs:
            return None
        v = attrs[key]
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.err(f"{what} must be an integer, not {v!r}")
        return v

    def integer_type(self, attrs: dict[str, _Value]) -> IntType:
        known = {"size", "align", "signed", "byte_order", "base", "encoding", "map"}
        for k in attrs:
            if k not in known:
                pass  # unknown attributes are ignored (with a warning in babeltrace2)
        size = self.int_attr(attrs, "size", "integer size")
        if size is None:
            raise self.err("integer without a size")
        if size <= 0 or size > MAX_INT_BITS:
            raise self.err(f"integer size {size} out of range 1..{MAX_INT_BITS}")
        if size > 64 and size % 8:
            raise self.err(f"integers over 64 bits must be a whole number of bytes (size {size})")
        align = self.int_attr(attrs, "align", "integer alignment")
        if align is None:
            align = 8 if size % 8 == 0 else 1
        self.check_align(align)
        signed = self.boolean(attrs.get("signed", False), "signed")
        bo = self.byte_order(attrs.get("byte_order", "native"))
        base = self.base(attrs.get("base", 10))
        enc = self.encoding(attrs.get("encoding", "none"))
        clock = None
        if "map" in attrs:
            m = attrs["map"]
            if not (isinstance(m, list) and len(m) == 3 and m[0] == "clock" and m[2] == "value"):
                raise self.err(f"bad integer map {m!r}: expected clock.NAME.value")
            clock = m[1]
        return IntType(size, signed, align, bo, base, enc, clock)

    def float_type(self, attrs: dict[str, _Value]) -> FloatType:
        exp = self.int_attr(attrs, "exp_dig", "exp_dig")
        mant = self.int_attr(attrs, "mant_dig", "mant_dig")
        if exp is None or mant is None:
            raise self.err("floating_point needs exp_dig and mant_dig")
        if (exp, mant) not in ((8, 24), (11, 53)):
            raise self.err(f"unsupported floating_point exp_dig={exp} mant_dig={mant} (only 32 and 64-bit IEEE 754)")
        align = self.int_attr(attrs, "align", "floating_point alignment")
        if align is None:
            align = 8
        self.check_align(align)
        bo = self.byte_order(attrs.get("byte_order", "native"))
        return FloatType(exp, mant, align, bo)

    def check_align(self, align: int) -> None:
        if align <= 0 or align & (align - 1) or align > MAX_ALIGN:
            raise self.err(f"alignment {align} is not a positive power of two")

    def boolean(self, v: _Value, what: str) -> bool:
        if isinstance(v, _Str):
            raise self.err(f"{what} must be true or false, not the string {v!r}")
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if v in ("true", "TRUE"):
            return True
        if v in ("false", "FALSE"):
            return False
        raise self.err(f"{what} must be true or false, not {v!r}")

    def byte_order(self, v: _Value) -> str:
        if isinstance(v, _Str):
            raise self.err(f"byte_order must be an identifier, not the string {v!r}")
        table = {"native": "native", "network": "be", "be": "be", "le": "le",
                 "big": "be", "little": "le"}
        if isinstance(v, str) and v in table:
            return table[v]
        raise self.err(f"invalid byte_order {v!r}")

    def base(self, v: _Value) -> int:
        if isinstance(v, _Str):
            raise self.err(f"integer base must be an identifier or number, not the string {v!r}")
        table: dict[object, int] = {
            "decimal": 10, "dec": 10, "d": 10, "i": 10, "u": 10, 10: 10,
            "hexadecimal": 16, "hex": 16, "x": 16, "X": 16, "p": 16, 16: 16,
            "octal": 8, "oct": 8, "o": 8, 8: 8,
            "binary": 2, "bin": 2, "b": 2, 2: 2,
        }
        if isinstance(v, (int, str)) and not isinstance(v, list) and v in table:
            return table[v]
        raise self.err(f"invalid integer base {v!r}")

    def encoding(self, v: _Value) -> str:
        if isinstance(v, _Str):
            raise self.err(f"encoding must be an identifier, not the string {v!r}")
        if isinstance(v, str) and v in ("none", "UTF8", "ASCII", "utf8", "ascii"):
            return "none" if v == "none" else "UTF8"
        raise self.err(f"invalid encoding {v!r}")

    def struct_type(self) -> StructType:
        name = None
        if self.tok.kind == "ident":
            name = self.next().text
        if self.is_punct("{"):
            st = StructType()
            if name is not None:
                if name in self.scope.structs:
                    raise self.err(f"duplicate struct name '{name}'")
                self.scope.structs[name] = st  # visible inside for "struct recursive" detection
                self.in_progress.add(id(st))
            self.scope = _Scope(self.scope)
            try:
                st.fields = self.field_list()
            finally:
                assert self.scope.parent is not None
                self.scope = self.scope.parent
                self.in_progress.discard(id(st))
        else:
            if name is None:
                raise self.err("struct without a name or a body")
            found = self.scope.find("structs", name)
            if found is None:
                raise self.err(f"unknown struct '{name}'")
            if id(found) in self.in_progress:
                raise self.err(f"struct '{name}' contains itself")
            st = found
        if self.is_ident("align"):
            self.next()
            self.expect("(")
            t = self.tok
            if t.kind != "number":
                raise self.err(f"struct alignment must be an integer, not '{t.text}'")
            self.next()
            self.expect(")")
            self.check_align(int(t.value))
            if st.fields or name is None or self.is_punct(";") or True:
                st.min_align = max(st.min_align, int(t.value))
        return st

    def field_list(self) -> list[tuple[str, FieldType]]:
        self.expect("{")
        fields: list[tuple[str, FieldType]] = []
        names: set[str] = set()
        self.struct_stack.append(fields)
        try:
            self._fields_into(fields, names)
        finally:
            self.struct_stack.pop()
        self.expect("}")
        return fields

    def _fields_into(self, fields: list[tuple[str, FieldType]], names: set[str]) -> None:
        while not self.is_punct("}"):
            if self.is_ident("typealias"):
                self.typealias()
                continue
            if self.is_ident("typedef"):
                self.typedef()
                continue
            ftype = self.type_specifier()
            if self.is_punct(";"):
                self.next()  # a type definition inside a struct, no field
                continue
            while True:
                decl_tok = self.tok
                fname, t = self.declarator(ftype)
                if fname in KEYWORDS:
                    raise self.err(f"field name '{fname}' is a reserved keyword", decl_tok)
                if fname in names:
                    raise self.err(f"duplicate field name '{fname}'", decl_tok)
                names.add(fname)
                fields.append((fname, t))
                if self.is_punct(","):
                    self.next()
                    continue
                break
            self.expect(";")

    def variant_type(self) -> VariantType:
        name = None
        if self.tok.kind == "ident":
            name = self.next().text
        tag = None
        if self.is_punct("<"):
            self.next()
            parts = [self.ident()]
            while self.is_punct("."):
                self.next()
                parts.append(self.ident())
            self.expect(">")
            tag = ".".join(parts)
            if tag in KEYWORDS:
                raise self.err(f"variant tag '{tag}' is a keyword")
        if self.is_punct("{"):
            self.scope = _Scope(self.scope)
            try:
                options = self.field_list()
            finally:
                assert self.scope.parent is not None
                self.scope = self.scope.parent
            v = VariantType(tag, options, self.anchor_of(tag) if tag else None)
            self.check_variant(v)
            if name is not None:
                if name in self.scope.variants:
                    raise self.err(f"duplicate variant name '{name}'")
                self.scope.variants[name] = v
            return v
        if name is None:
            raise self.err("variant without a name or a body")
        found = self.scope.find("variants", name)
        if found is None:
            raise self.err(f"unknown variant '{name}'")
        if tag is None:
            return found
        v = VariantType(tag, found.options, self.anchor_of(tag))
        self.check_variant(v)
        return v

    def check_variant(self, v: VariantType) -> None:
        """Checks possible where the tag is found lexically: it must be an enum that selects
        at least one of the options."""
        if v.anchor is None or v.tag is None:
            return
        found = [t for n, t in v.anchor if n == v.tag.split(".")[0]]
        t = found[0] if found else None
        for part in v.tag.split(".")[1:]:
            if not isinstance(t, StructType):
                return
            sub = [ft for n, ft in t.fields if n == part]
            t = sub[0] if sub else None
        if not isinstance(t, EnumType):
            raise self.err(f"variant tag '{v.tag}' is not an enum")
        labels = {m.label for m in t.mappings}
        if v.options and not any(n in labels or n.lstrip("_") in labels for n, _ in v.options):
            raise self.err(f"no option of the variant tagged by '{v.tag}' matches a label of its enum")

    def enum_type(self) -> EnumType:
        name = None
        if self.tok.kind == "ident":
            name = self.next().text
        container: FieldType | None = None
        if self.is_punct(":"):
            self.next()
            container = self.type_specifier()
        if not self.is_punct("{"):
            if name is None:
                raise self.err("enum without a name or a body")
            found = self.scope.find("enums", name)
            if found is None:
                raise self.err(f"unknown enum '{name}'")
            return found
        if container is None:
            container = self.scope.find("aliases", "int")
            if container is None:
                raise self.err("enum without a container type and no 'int' type declared")
        if isinstance(container, EnumType):
            container = container.container
        if not isinstance(container, IntType):
            raise self.err("enum container must be an integer type")
        mappings = self.enum_body(container)
        e = EnumType(container, mappings)
        if name is not None:
            if name in self.scope.enums:
                raise self.err(f"duplicate enum name '{name}'")
            self.scope.enums[name] = e
        return e

    def enum_body(self, container: IntType) -> list[Mapping]:
        self.expect("{")
        if container.signed:
            lo_lim, hi_lim = -(1 << (container.size - 1)), (1 << (container.size - 1)) - 1
        else:
            lo_lim, hi_lim = 0, (1 << container.size) - 1
        out: list[Mapping] = []
        nxt = 0
        while True:
            t = self.tok
            if t.kind == "string":
                label = self.next().value
            elif t.kind == "ident":
                label = self.next().text
            else:
                raise self.err(f"expected an enum label, found '{t.text}'")
            if self.is_punct("="):
                self.next()
                lo = self.enum_value()
                hi = lo
                if self.is_punct("..."):
                    self.next()
                    hi = self.enum_value()
                if hi < lo:
                    lo, hi = hi, lo
            else:
                lo = hi = nxt
            for v in (lo, hi):
                if not lo_lim <= v <= hi_lim:
                    raise self.err(f"enum value {v} of '{label}' does not fit its {container.size}-bit container")
            out.append(Mapping(label, lo, hi))
            nxt = hi + 1
            if self.is_punct(","):
                self.next()
                if self.is_punct("}"):
                    break
                continue
            break
        self.expect("}")
        if not out:
            raise self.err("empty enum")
        return out

    def enum_value(self) -> int:
        neg = False
        if self.is_punct("-"):
            self.next()
            neg = True
        elif self.is_punct("+"):
            self.next()
        t = self.tok
        if t.kind != "number":
            raise self.err(f"enum value must be an integer, not '{t.text}'")
        self.next()
        return -int(t.value) if neg else int(t.value)

    # block handlers
    def on_trace(self, attrs: dict[str, _Value], tok: Token) -> None:
        if self.trace_seen:
            raise self.err("duplicate trace block", tok)
        self.trace_seen = True
        tc = self.trace
        for k, v in attrs.items():
            if k == "major":
                if v != 1:
                    raise self.err(f"unsupported trace major version {v!r}", tok)
                tc.major = 1
            elif k == "minor":
                if not isinstance(v, int) or v != 8:
                    raise self.err(f"unsupported trace minor version {v!r}", tok)
                tc.minor = v
            elif k == "uuid":
                tc.uuid = self.uuid(v, tok)
            elif k == "byte_order":
                bo = self.byte_order(v)
                if bo == "native":
                    raise self.err("trace byte_order cannot be native", tok)
                tc.byte_order = bo
                self.byte_order_given = True
            elif k == "packet.header":
                if not isinstance(v, StructType):
                    raise self.err("trace packet.header must be a struct", tok)
                tc.packet_header = v
        if "major" not in attrs or "minor" not in attrs:
            raise self.err("trace block needs major and minor", tok)
        if not self.byte_order_given:
            raise self.err("trace block needs a byte_order", tok)

    def uuid(self, v: _Value, tok: Token) -> str:
        if not isinstance(v, str) or not re.fullmatch(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", v
        ):
            raise self.err(f"malformed UUID {v!r}", tok)
        return v.lower()

    def on_env(self, attrs: dict[str, _Value], tok: Token) -> None:
        for k, v in attrs.items():
            if isinstance(v, list):
                v = ".".join(v)
            if isinstance(v, FieldType):
                continue
            self.trace.env[k] = v

    def on_clock(self, attrs: dict[str, _Value], tok: Token) -> None:
        name = attrs.get("name")
        if not isinstance(name, str):
            raise self.err("clock block without a name", tok)
        if name in self.trace.clocks:
            raise self.err(f"duplicate clock '{name}'", tok)
        c = ClockClass(name)
        for k, v in attrs.items():
            if k == "freq":
                if not isinstance(v, int) or v <= 0:
                    raise self.err(f"clock frequency must be a positive integer, not {v!r}", tok)
                c.freq = v
            elif k in ("offset_s", "offset", "precision"):
                if not isinstance(v, int):
                    raise self.err(f"clock {k} must be an integer, not {v!r}", tok)
                setattr(c, k, v)
            elif k == "absolute":
                c.absolute = self.boolean(v, "absolute")
            elif k == "uuid":
                c.uuid = self.uuid(v, tok)
            elif k == "description":
                c.description = str(v)
        self.trace.clocks[name] = c

    def on_stream(self, attrs: dict[str, _Value], tok: Token) -> None:
        sid = attrs.get("id", None)
        given = sid is not None
        if sid is None:
            sid = 0
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise self.err(f"stream id must be an integer, not {sid!r}", tok)
        if sid in self.streams:
            raise self.err(f"duplicate stream id {sid}", tok)
        sc = StreamClass(sid, id_given=given)
        for k, v in attrs.items():
            if k in ("event.header", "packet.context", "event.context"):
                if not isinstance(v, StructType):
                    raise self.err(f"stream {k} must be a struct", tok)
                setattr(sc, k.replace(".", "_"), v)
        self.streams[sid] = sc

    def on_event(self, attrs: dict[str, _Value], tok: Token) -> None:
        name = attrs.get("name")
        if isinstance(name, list):
            name = ".".join(name)
        if not isinstance(name, str):
            raise self.err("event block without a name", tok)
        eid = attrs.get("id", None)
        if eid is not None and (not isinstance(eid, int) or isinstance(eid, bool) or eid < 0):
            raise self.err(f"event id must be a non-negative integer, not {eid!r}", tok)
        sid = attrs.get("stream_id", None)
        if sid is not None and not isinstance(sid, int):
            raise self.err(f"event stream_id must be an integer, not {sid!r}", tok)
        ev = EventClass(name, -1 if eid is None else eid, -1 if sid is None else sid)
        for k, v in attrs.items():
            if k == "context":
                if not isinstance(v, StructType):
                    raise self.err("event context must be a struct", tok)
                ev.context = v
            elif k == "fields":
                if not isinstance(v, StructType):
                    raise self.err("event fields must be a struct", tok)
                ev.fields = v
            elif k == "loglevel" and isinstance(v, int):
                ev.loglevel = v
            elif k == "model.emf.uri" and isinstance(v, str):
                ev.model_emf_uri = v
            elif k not in ("name", "id", "stream_id"):
                ev.attributes[k] = v
        self.events.append(ev)

    def on_callsite(self, attrs: dict[str, _Value], tok: Token) -> None:
        pass

    def finish(self) -> TraceClass:
        tc = self.trace
        if not self.trace_seen:
            raise MetadataError("metadata has no trace block")
        if not self.streams and self.events:
            self.streams[0] = StreamClass(0, id_given=False)
        if not self.streams:
            self.streams[0] = StreamClass(0, id_given=False)
        if len(self.streams) > 1 and any(not s.id_given for s in self.streams.values()):
            raise MetadataError("several stream classes but one has no id")
        for ev in self.events:
            sid = ev.stream_id
            if sid == -1:
                if len(self.streams) != 1:
                    raise MetadataError(f"event '{ev.name}' has no stream_id and there are several streams")
                sid = next(iter(self.streams))
            if sid not in self.streams:
                raise MetadataError(f"event '{ev.name}' refers to undefined stream {sid}")
            ev.stream_id = sid
            sc = self.streams[sid]
            if ev.id == -1:
                if sc.events:
                    raise MetadataError(f"event '{ev.name}' has no id but its stream has other events")
                ev.id = 0
            if ev.id in sc.events:
                raise MetadataError(f"duplicate event id {ev.id} in stream {sid}")
            sc.events[ev.id] = ev
        tc.streams = self.streams
        return tc


def parse_tsdl(text: str) -> TraceClass:
    """Parse a whole TSDL text (after the version header check) into a :class:`TraceClass`."""
    return _Parser(tokenize(text)).parse()


def _is_absolute(path: str) -> bool:
    return path.startswith(("trace.", "stream.", "event.", "env.", "clock."))
