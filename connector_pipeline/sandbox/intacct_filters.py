"""The sandbox gateway's reading of `query` filters (`<filter>` XML) into a tree.

Written from the documented grammar (reference/intacct-api.md, "query"), not from the
client's filter builder: the sandbox must be able to reject what a buggy client sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

SINGLE_VALUE = frozenset(
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
LIST_VALUE = frozenset({"in", "notin"})
UNARY = frozenset({"isnull", "isnotnull"})
LOGICAL = frozenset({"and", "or"})


@dataclass(frozen=True)
class Condition:
    """One node: a comparison on `field`, or a logical op (and / or / not) over `children`."""

    op: str
    field: str | None = None
    values: tuple[Any, ...] = ()
    children: tuple[Condition, ...] = ()


def read_filter(el: etree._Element) -> Condition:
    """An operator element -> Condition; ValueError on anything outside the grammar."""
    op = str(el.tag)
    if op in LOGICAL:
        children = tuple(read_filter(c) for c in el if isinstance(c.tag, str))
        if len(children) < 2:
            raise ValueError(f"<{op}> needs at least two operands")
        return Condition(op, children=children)
    if op not in SINGLE_VALUE | LIST_VALUE | UNARY | {"between"}:
        raise ValueError(f"unknown filter operator <{op}>")
    fields = el.findall("field")
    if len(fields) != 1 or not (fields[0].text or "").strip():
        raise ValueError(f"<{op}> needs exactly one <field>")
    values = tuple((v.text or "") for v in el.findall("value"))
    expected = {"between": 2, **dict.fromkeys(SINGLE_VALUE, 1), **dict.fromkeys(UNARY, 0)}
    if op in expected and len(values) != expected[op]:
        raise ValueError(f"<{op}> takes {expected[op]} <value> element(s), got {len(values)}")
    if op in LIST_VALUE and not values:
        raise ValueError(f"<{op}> needs at least one <value>")
    return Condition(op, (fields[0].text or "").strip(), values)


def largest_in_list(condition: Condition) -> int:
    """The most values any `in` / `notin` of the tree carries (Intacct allows 1,000)."""
    if condition.children:
        return max((largest_in_list(c) for c in condition.children), default=0)
    return len(condition.values) if condition.op in LIST_VALUE else 0


def fields_in(condition: Condition) -> set[str]:
    if condition.field is not None:
        return {condition.field}
    out: set[str] = set()
    for child in condition.children:
        out |= fields_in(child)
    return out
