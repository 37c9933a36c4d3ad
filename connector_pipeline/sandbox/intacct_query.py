"""Filter evaluation for the sandbox gateway, and the readByQuery query language.

`query` filters arrive as XML and are read by `intacct_filters.read_filter`; the
legacy readByQuery `<query>` is an SQL-like string parsed here into the same `Condition`
tree (plus `not`). Comparisons are typed the way Intacct types the field:
timestamps in the user's zone, numbers as numbers, strings case-sensitively unless the
query asks otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector_pipeline.sandbox.intacct_data import NUMERIC_FIELDS, TIMESTAMP_FIELDS
from connector_pipeline.sandbox.intacct_filters import Condition
from connector_pipeline.sandbox.intacct_formatting import SandboxFormatting


class QueryError(ValueError):
    """A query the gateway would reject (bad syntax, unknown field, limit exceeded)."""


def field_value(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _typed(path: str, value: Any, formatting: SandboxFormatting, *, literal: bool) -> Any:
    if value is None:
        return None
    leaf = _leaf(path)
    if leaf in TIMESTAMP_FIELDS:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        if not text:
            return None
        try:
            return formatting.parse_timestamp(text)
        except ValueError as exc:
            raise QueryError(f"invalid timestamp {text!r} for {path}") from exc
    if leaf in NUMERIC_FIELDS:
        text = str(value).strip()
        if not text:
            return None
        try:
            return Decimal(text)
        except InvalidOperation as exc:
            if literal:
                raise QueryError(f"invalid number {text!r} for {path}") from exc
            return None
    return str(value)


Predicate = Callable[[Mapping[str, Any]], bool]


def compile_filter(
    f: Condition, formatting: SandboxFormatting, *, case_insensitive: bool = False
) -> Predicate:
    """A predicate for `f`, with every literal converted once (a page scans every record)."""
    op = f.op
    if op in {"and", "or", "not"}:
        parts = [
            compile_filter(c, formatting, case_insensitive=case_insensitive) for c in f.children
        ]
        if op == "and":
            return lambda r: all(p(r) for p in parts)
        if op == "or":
            return lambda r: any(p(r) for p in parts)
        return lambda r: not parts[0](r)
    if f.field is None:
        raise QueryError(f"{op} needs a field")
    path = f.field
    if op == "isnull":
        return lambda r: _typed(path, field_value(r, path), formatting, literal=False) in (None, "")
    if op == "isnotnull":
        return lambda r: (
            _typed(path, field_value(r, path), formatting, literal=False)
            not in (
                None,
                "",
            )
        )
    literals = [_typed(path, v, formatting, literal=True) for v in f.values]
    if case_insensitive:
        literals = [v.lower() if isinstance(v, str) else v for v in literals]
    if op in {"like", "notlike"}:
        pattern = str(f.values[0])
        regex = re.compile(
            "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
            re.DOTALL | (re.IGNORECASE if case_insensitive else 0),
        )
        wanted = op == "like"

        def like(r: Mapping[str, Any]) -> bool:
            value = field_value(r, path)
            if value is None:
                return not wanted
            return (regex.fullmatch(str(value)) is not None) == wanted

        return like
    compare = _COMPARE.get(op)
    if compare is None:
        raise QueryError(f"unsupported operator {op}")
    literal_set = literals

    def check(r: Mapping[str, Any]) -> bool:
        actual = _typed(path, field_value(r, path), formatting, literal=False)
        if actual is None:
            return op in {"notequalto", "notin"}
        if case_insensitive and isinstance(actual, str):
            actual = actual.lower()
        try:
            return compare(actual, literal_set)
        except TypeError as exc:
            raise QueryError(f"cannot compare {path} with {f.values!r}") from exc

    return check


_COMPARE: dict[str, Callable[[Any, list[Any]], bool]] = {
    "equalto": lambda a, v: bool(a == v[0]),
    "notequalto": lambda a, v: bool(a != v[0]),
    "lessthan": lambda a, v: bool(a < v[0]),
    "lessthanorequalto": lambda a, v: bool(a <= v[0]),
    "greaterthan": lambda a, v: bool(a > v[0]),
    "greaterthanorequalto": lambda a, v: bool(a >= v[0]),
    "between": lambda a, v: bool(v[0] <= a <= v[1]),
    "in": lambda a, v: a in v,
    "notin": lambda a, v: a not in v,
}


def sort_key(
    record: Mapping[str, Any], orders: Sequence[tuple[str, bool]], formatting: SandboxFormatting
) -> tuple[Any, ...]:
    """A key for `sorted`: descending fields are handled by the caller's stable passes."""
    parts: list[Any] = []
    for path, _ascending in orders:
        value = _typed(path, field_value(record, path), formatting, literal=False)
        # (False, 0) for empty values: they sort first and never compare with real ones.
        parts.append((True, value) if value is not None else (False, 0))
    return tuple(parts)


def order_records(
    records: list[dict[str, Any]],
    orders: Sequence[tuple[str, bool]],
    formatting: SandboxFormatting,
) -> list[dict[str, Any]]:
    if len({ascending for _, ascending in orders}) <= 1:
        descending = bool(orders) and not orders[0][1]
        return sorted(records, key=lambda r: sort_key(r, orders, formatting), reverse=descending)
    out = list(records)
    # Mixed directions: stable sorts from the last order to the first.
    for path, ascending in reversed(orders):
        single = [(path, True)]

        def key(record: Mapping[str, Any], single: list[tuple[str, bool]] = single) -> Any:
            return sort_key(record, single, formatting)

        out.sort(key=key, reverse=not ascending)
    return out


# ----------------------------------------------------------------------------- readByQuery

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:\\.|[^'\\])*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<op><=|>=|<>|!=|=|<|>)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_OPS = {
    "=": "equalto",
    "!=": "notequalto",
    "<>": "notequalto",
    "<": "lessthan",
    "<=": "lessthanorequalto",
    ">": "greaterthan",
    ">=": "greaterthanorequalto",
}
# readByQuery writes booleans as 'T'/'F' (STATUS = 'T'); the records hold active/inactive.
_STATUS_LITERALS = {"T": "active", "F": "inactive"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"cannot parse query near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek_word(self) -> str:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].upper()
        return ""

    def take(self, kind: str) -> str:
        if self.pos >= len(self.tokens) or self.tokens[self.pos][0] != kind:
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of query"
            raise QueryError(f"expected {kind} but found {found!r}")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def expr(self) -> Condition:
        parts = [self.term()]
        while self.peek_word() == "OR":
            self.pos += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Condition("or", children=tuple(parts))

    def term(self) -> Condition:
        parts = [self.factor()]
        while self.peek_word() == "AND":
            self.pos += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else Condition("and", children=tuple(parts))

    def factor(self) -> Condition:
        if self.peek_word() == "NOT":
            self.pos += 1
            return Condition("not", children=(self.factor(),))
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "lp":
            self.pos += 1
            inner = self.expr()
            self.take("rp")
            return inner
        return self.comparison()

    def literal(self, field_name: str) -> str:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] in {"str", "num"}:
            value = self.tokens[self.pos][1]
            self.pos += 1
            if _leaf(field_name) == "STATUS":
                return _STATUS_LITERALS.get(value, value)
            return value
        raise QueryError(f"expected a value for {field_name}")

    def comparison(self) -> Condition:
        name = self.take("word")
        negate = False
        if self.peek_word() == "NOT":
            negate = True
            self.pos += 1
        word = self.peek_word()
        if word == "LIKE":
            self.pos += 1
            return Condition("notlike" if negate else "like", name, (self.literal(name),))
        if word == "IN":
            self.pos += 1
            self.take("lp")
            values = [self.literal(name)]
            while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "comma":
                self.pos += 1
                values.append(self.literal(name))
            self.take("rp")
            return Condition("notin" if negate else "in", name, tuple(values))
        if word == "IS" and not negate:
            self.pos += 1
            if self.peek_word() == "NOT":
                self.pos += 1
                self.take("word")
                return Condition("isnotnull", name)
            self.take("word")
            return Condition("isnull", name)
        if negate:
            raise QueryError(f"unexpected NOT after {name}")
        op = self.take("op")
        return Condition(_OPS[op], name, (self.literal(name),))


def parse_query_text(text: str) -> Condition | None:
    """An SQL-like readByQuery condition -> Condition (None for an empty query)."""
    if not text.strip():
        return None
    parser = _Parser(_tokenize(text))
    result = parser.expr()
    if parser.pos != len(parser.tokens):
        raise QueryError(f"unexpected {parser.tokens[parser.pos][1]!r} in query")
    return result
