"""Builders for the `<function>` bodies the client sends (dtdversion 3.0)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lxml import etree

from connector_pipeline.intacct.filters import Filter, to_element
from connector_pipeline.intacct.xml import append_value, sub

Order = tuple[str, bool]  # (field, ascending)


def get_api_session(location_id: str | None = None) -> etree._Element:
    el = etree.Element("getAPISession")
    if location_id is not None:
        sub(el, "locationid", location_id)
    return el


def read_user_formatting() -> etree._Element:
    return etree.Element("readUserFormatting")


def query(
    object_name: str,
    fields: Sequence[str],
    *,
    filter: Filter | None = None,
    orderby: Sequence[Order] = (),
    pagesize: int,
    offset: int = 0,
    format_value: Callable[[Any], str] = str,
    case_insensitive: bool = False,
    show_private: bool = True,
) -> etree._Element:
    el = etree.Element("query")
    sub(el, "object", object_name)
    select = sub(el, "select")
    for name in fields:
        sub(select, "field", name)
    if filter is not None:
        sub(el, "filter").append(to_element(filter, format_value))
    if orderby:
        orders = sub(el, "orderby")
        for name, ascending in orderby:
            order = sub(orders, "order")
            sub(order, "field", name)
            sub(order, "ascending" if ascending else "descending")
    options = sub(el, "options")
    sub(options, "caseinsensitive", "true" if case_insensitive else "false")
    sub(options, "showprivate", "true" if show_private else "false")
    sub(el, "pagesize", pagesize)
    sub(el, "offset", offset)
    return el


def read_by_query(
    object_name: str, fields: Sequence[str], query_text: str, pagesize: int
) -> etree._Element:
    el = etree.Element("readByQuery")
    sub(el, "object", object_name)
    sub(el, "fields", ",".join(fields) if fields else "*")
    sub(el, "query", query_text)
    sub(el, "pagesize", pagesize)
    return el


def read_more(result_id: str) -> etree._Element:
    el = etree.Element("readMore")
    sub(el, "resultId", result_id)
    return el


def read(object_name: str, keys: Sequence[Any], fields: Sequence[str] = ()) -> etree._Element:
    el = etree.Element("read")
    sub(el, "object", object_name)
    sub(el, "keys", ",".join(str(k) for k in keys))
    sub(el, "fields", ",".join(fields) if fields else "*")
    return el


def _write(verb: str, object_name: str, records: Sequence[Mapping[str, Any]]) -> etree._Element:
    el = etree.Element(verb)
    for record in records:
        append_value(el, object_name, dict(record))
    return el


def create(object_name: str, records: Sequence[Mapping[str, Any]]) -> etree._Element:
    return _write("create", object_name, records)


def update(object_name: str, records: Sequence[Mapping[str, Any]]) -> etree._Element:
    return _write("update", object_name, records)


def delete(object_name: str, keys: Sequence[Any]) -> etree._Element:
    el = etree.Element("delete")
    sub(el, "object", object_name)
    sub(el, "keys", ",".join(str(k) for k in keys))
    return el


def lookup(object_name: str) -> etree._Element:
    el = etree.Element("lookup")
    sub(el, "object", object_name)
    return el
