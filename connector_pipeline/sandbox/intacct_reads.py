"""The gateway's read functions: readUserFormatting, query, readByQuery, readMore, read,
lookup. Each takes the function's element and returns the `<data>` to answer with, or
raises FunctionFailed."""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from connector_pipeline import settings
from connector_pipeline.sandbox.intacct_data import ObjectDef
from connector_pipeline.sandbox.intacct_envelope import FunctionFailed, err, sub, text_of
from connector_pipeline.sandbox.intacct_filters import fields_in, largest_in_list, read_filter
from connector_pipeline.sandbox.intacct_lookup import inspect_data, lookup_data
from connector_pipeline.sandbox.intacct_query import (
    QueryError,
    compile_filter,
    order_records,
    parse_query_text,
)

if TYPE_CHECKING:
    from connector_pipeline.sandbox.intacct_gateway import IntacctGateway


@dataclass
class ResultSet:
    object_def: ObjectDef
    fields: list[str]
    remaining: list[dict[str, Any]]
    pagesize: int
    total: int
    expires_monotonic: float


def query_failed(description2: str, correction: str = "") -> FunctionFailed:
    return FunctionFailed([err("Query Failed", description2, correction)])


def int_of(el: etree._Element, path: str, default: int) -> int:
    text = text_of(el, path)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise query_failed(f"{path} must be an integer") from None


def field_list(text: str) -> list[str]:
    if not text.strip() or text.strip() == "*":
        return []
    return [f.strip() for f in text.split(",") if f.strip()]


def keys_of(el: etree._Element, function: str) -> list[str]:
    keys = [k.strip() for k in text_of(el, "keys").split(",") if k.strip()]
    if len(keys) > settings.INTACCT_MAX_KEYS_PER_READ:
        raise FunctionFailed(
            [
                err(
                    "BL01001973",
                    f"{function} accepts at most {settings.INTACCT_MAX_KEYS_PER_READ} keys",
                )
            ]
        )
    return keys


class Reads:
    def __init__(self, gateway: IntacctGateway) -> None:
        self.gw = gateway
        self.result_sets: dict[str, ResultSet] = {}

    def require_object(self, el: etree._Element, tag: str = "object") -> ObjectDef:
        name = text_of(el, tag)
        definition = self.gw.object_def(name)
        if definition is None:
            raise query_failed(f"Object definition {name} not found")
        return definition

    @staticmethod
    def check_fields(definition: ObjectDef, paths: Iterable[str]) -> None:
        bad = [p for p in paths if p.split(".", 1)[0] not in definition.fields]
        if bad:
            raise query_failed(f"Invalid fields list {','.join(bad)}", "Check the field names")

    def read_user_formatting(self, _el: etree._Element) -> etree._Element:
        # SYNTHETIC shape: the fields readUserFormatting documents (locale, dateformat,
        # gmtoffset, clock) under one element; no recorded answer was available.
        formatting = self.gw.formatting
        data = etree.Element("data", listtype="userformatting", count="1")
        record = sub(data, "userformatting")
        sub(record, "locale", formatting.locale)
        sub(record, "dateformat", formatting.dateformat)
        sub(record, "gmtoffset", formatting.gmtoffset)
        sub(record, "clock", formatting.clock)
        return data

    def _filtered(
        self,
        definition: ObjectDef,
        predicate: Callable[[Mapping[str, Any]], bool] | None,
        orders: Sequence[tuple[str, bool]],
    ) -> list[dict[str, Any]]:
        records = list(self.gw.records[definition.name].values())
        if predicate is not None:
            records = [r for r in records if predicate(r)]
        return order_records(records, orders or [(definition.key_field, True)], self.gw.formatting)

    def _query_predicate(
        self, definition: ObjectDef, el: etree._Element
    ) -> Callable[[Mapping[str, Any]], bool] | None:
        filter_el = el.find("filter")
        if filter_el is None:
            return None
        case_insensitive = text_of(el, "options/caseinsensitive").lower() == "true"
        operators = [c for c in filter_el if isinstance(c.tag, str)]
        try:
            if len(operators) != 1:
                raise QueryError("<filter> takes exactly one operator")
            condition = read_filter(operators[0])
            if largest_in_list(condition) > settings.INTACCT_MAX_IN_VALUES:
                raise QueryError(
                    f"The in operator accepts at most {settings.INTACCT_MAX_IN_VALUES} values"
                )
            self.check_fields(definition, fields_in(condition))
            return compile_filter(condition, self.gw.formatting, case_insensitive=case_insensitive)
        except ValueError as exc:
            raise query_failed(str(exc)) from None

    def query(self, el: etree._Element) -> etree._Element:
        """SYNTHETIC answer shape (no recorded `query` response is available): the documented
        `<data listtype totalcount offset count numremaining>`, upper-case record elements."""
        definition = self.require_object(el)
        select = el.find("select")
        fields = (
            [(f.text or "").strip() for f in select.findall("field")] if select is not None else []
        )
        if not fields:
            raise query_failed("The select element is required")
        self.check_fields(definition, fields)
        pagesize = int_of(el, "pagesize", 100)
        offset = int_of(el, "offset", 0)
        if not 1 <= pagesize <= settings.INTACCT_QUERY_MAX_PAGESIZE:
            raise query_failed(
                f"pagesize {pagesize} is invalid: it must be between 1 and "
                f"{settings.INTACCT_QUERY_MAX_PAGESIZE}"
            )
        if offset < 0:
            raise query_failed(f"offset {offset} is invalid")
        predicate = self._query_predicate(definition, el)
        orders = [
            (text_of(order, "field"), order.find("descending") is None)
            for order in el.findall("orderby/order")
        ]
        self.check_fields(definition, [f for f, _ in orders])
        try:
            records = self._filtered(definition, predicate, orders)
        except QueryError as exc:
            raise query_failed(str(exc)) from None
        page = records[offset : offset + pagesize]
        remaining = max(0, len(records) - offset - len(page))
        data = etree.Element("data")
        data.set("listtype", definition.record_tag)
        data.set("totalcount", str(len(records)))
        data.set("offset", str(offset))
        data.set("count", str(len(page)))
        data.set("numremaining", str(remaining))
        for record in page:
            self.gw.renderer.record(data, definition.record_tag, record, fields)
        return data

    def read_by_query(self, el: etree._Element) -> etree._Element:
        definition = self.require_object(el)
        fields = field_list(text_of(el, "fields"))
        if fields:
            self.check_fields(definition, fields)
        pagesize = int_of(el, "pagesize", 100)
        if not 1 <= pagesize <= settings.INTACCT_READBYQUERY_MAX_PAGESIZE:
            raise query_failed(
                f"pagesize {pagesize} is invalid: readByQuery returns at most "
                f"{settings.INTACCT_READBYQUERY_MAX_PAGESIZE} records per page"
            )
        try:
            parsed = parse_query_text(text_of(el, "query"))
            if parsed is not None:
                self.check_fields(definition, fields_in(parsed))
            predicate = compile_filter(parsed, self.gw.formatting) if parsed is not None else None
            records = self._filtered(definition, predicate, [])
        except ValueError as exc:
            raise query_failed(str(exc)) from None
        result_set = ResultSet(
            definition,
            fields,
            [copy.deepcopy(r) for r in records],
            pagesize,
            len(records),
            time.monotonic() + self.gw.config.result_id_ttl_s,
        )
        result_id = secrets.token_hex(16) if len(records) > pagesize else ""
        return self._page(result_set, result_id)

    def _page(self, result_set: ResultSet, result_id: str) -> etree._Element:
        page = result_set.remaining[: result_set.pagesize]
        result_set.remaining = result_set.remaining[result_set.pagesize :]
        tag = result_set.object_def.name.lower()
        data = etree.Element("data")
        data.set("listtype", tag)
        data.set("count", str(len(page)))
        data.set("totalcount", str(result_set.total))
        data.set("numremaining", str(len(result_set.remaining)))
        data.set("resultId", result_id)
        if result_id:
            if result_set.remaining:
                self.result_sets[result_id] = result_set
            else:
                self.result_sets.pop(result_id, None)
        for record in page:
            self.gw.renderer.record(
                data, tag, record, result_set.fields or result_set.object_def.all_fields
            )
        return data

    def read_more(self, el: etree._Element) -> etree._Element:
        result_id = text_of(el, "resultId")
        result_set = self.result_sets.get(result_id)
        if result_set is not None and result_set.expires_monotonic <= time.monotonic():
            del self.result_sets[result_id]
            result_set = None
        if result_set is None:
            raise FunctionFailed(
                [
                    err(
                        "readMore failed",
                        f"Attempt to readMore with an invalid or expired resultId: {result_id}",
                    )
                ]
            )
        return self._page(result_set, result_id)

    def read(self, el: etree._Element) -> etree._Element:
        definition = self.require_object(el)
        keys = keys_of(el, "read")
        fields = field_list(text_of(el, "fields"))
        if fields:
            self.check_fields(definition, fields)
        data = etree.Element("data")
        data.set("listtype", definition.record_tag)
        records = self.gw.records[definition.name]
        found = [records[int(k)] for k in keys if k.isdigit() and int(k) in records]
        data.set("count", str(len(found)))
        for record in found:
            self.gw.renderer.record(
                data, definition.record_tag, record, fields or definition.all_fields
            )
        return data

    def lookup(self, el: etree._Element) -> etree._Element:
        return lookup_data(self.require_object(el))

    def inspect(self, el: etree._Element) -> etree._Element:
        detail = (el.get("detail") or "").strip() == "1"
        return inspect_data(self.require_object(el), detail=detail)
