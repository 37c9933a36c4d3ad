"""Filters for the `query` function, as data.

A `Filter` is built with the helpers below, serialised to the documented `<filter>` XML
by `to_element`, and read back by `from_element` (the sandbox gateway evaluates the same
tree, so client and sandbox cannot disagree on the grammar).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from connector_pipeline.intacct.text import sanitize_xml_text

COMPARISONS = frozenset(
    {
        "equalto",
        "notequalto",
        "lessthan",
        "lessthanorequalto",
        "greaterthan",
        "greaterthanorequalto",
        "like",
        "notlike",
    }
)
MULTI_VALUE = frozenset({"in", "notin", "between"})
UNARY = frozenset({"isnull", "isnotnull"})
LOGICAL = frozenset({"and", "or"})


@dataclass(frozen=True)
class Filter:
    op: str
    field: str | None = None
    values: tuple[Any, ...] = ()
    children: tuple[Filter, ...] = ()


def _cmp(op: str) -> Callable[[str, Any], Filter]:
    def build(field_name: str, value: Any) -> Filter:
        return Filter(op, field_name, (value,))

    return build


eq = _cmp("equalto")
ne = _cmp("notequalto")
lt = _cmp("lessthan")
le = _cmp("lessthanorequalto")
gt = _cmp("greaterthan")
ge = _cmp("greaterthanorequalto")
like = _cmp("like")
not_like = _cmp("notlike")


def in_(field_name: str, values: Iterable[Any]) -> Filter:
    return Filter("in", field_name, tuple(values))


def not_in(field_name: str, values: Iterable[Any]) -> Filter:
    return Filter("notin", field_name, tuple(values))


def between(field_name: str, low: Any, high: Any) -> Filter:
    return Filter("between", field_name, (low, high))


def is_null(field_name: str) -> Filter:
    return Filter("isnull", field_name)


def is_not_null(field_name: str) -> Filter:
    return Filter("isnotnull", field_name)


def _logical(op: str, parts: tuple[Filter | None, ...]) -> Filter:
    kept = tuple(p for p in parts if p is not None)
    if not kept:
        raise ValueError(f"{op} needs at least one filter")
    # The schema wants two or more children under and/or: collapse a lone one.
    return kept[0] if len(kept) == 1 else Filter(op, children=kept)


def and_(*parts: Filter | None) -> Filter:
    return _logical("and", parts)


def or_(*parts: Filter | None) -> Filter:
    return _logical("or", parts)


def to_element(f: Filter, format_value: Callable[[Any], str] = str) -> etree._Element:
    """The operator element (without the `<filter>` wrapper)."""
    el = etree.Element(f.op)
    if f.op in LOGICAL:
        for child in f.children:
            el.append(to_element(child, format_value))
        return el
    if f.field is None:
        raise ValueError(f"{f.op} needs a field")
    etree.SubElement(el, "field").text = sanitize_xml_text(f.field)
    for value in f.values:
        etree.SubElement(el, "value").text = sanitize_xml_text(format_value(value))
    return el


def from_element(el: etree._Element) -> Filter:
    """Parse an operator element; raises ValueError on anything outside the grammar."""
    op = str(el.tag)
    if op in LOGICAL:
        children = tuple(from_element(c) for c in el if isinstance(c.tag, str))
        if len(children) < 2:
            raise ValueError(f"<{op}> needs at least two operands")
        return Filter(op, children=children)
    if op not in COMPARISONS | MULTI_VALUE | UNARY:
        raise ValueError(f"unknown filter operator <{op}>")
    field_el = el.find("field")
    if field_el is None or not (field_el.text or "").strip():
        raise ValueError(f"<{op}> needs a <field>")
    values = tuple((v.text or "") for v in el.findall("value"))
    if op in COMPARISONS and len(values) != 1:
        raise ValueError(f"<{op}> takes exactly one <value>")
    if op == "between" and len(values) != 2:
        raise ValueError("<between> takes two <value>s")
    if op in {"in", "notin"} and not values:
        raise ValueError(f"<{op}> needs at least one <value>")
    return Filter(op, (field_el.text or "").strip(), values)


def in_value_count(f: Filter) -> int:
    """The largest number of values in any `in`/`notin` of the tree (limit: 1,000)."""
    if f.op in LOGICAL:
        return max((in_value_count(c) for c in f.children), default=0)
    return len(f.values) if f.op in {"in", "notin"} else 0
