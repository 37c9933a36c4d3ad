"""The gateway's write functions: create, update, delete (generic, up to 100 records) and
the 2.1-style `create_<object>` that answers with `<key>`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lxml import etree

from connector_pipeline import settings
from connector_pipeline.sandbox.intacct_data import TICKET_INTEGER_FIELDS, ObjectDef
from connector_pipeline.sandbox.intacct_envelope import (
    ErrorTuple,
    FunctionFailed,
    err,
    sub,
)
from connector_pipeline.sandbox.intacct_reads import keys_of
from connector_pipeline.sandbox.intacct_xml import element_value

if TYPE_CHECKING:
    from connector_pipeline.sandbox.intacct_gateway import IntacctGateway

_NOT_WRITABLE = frozenset({"WHENCREATED", "WHENMODIFIED"})


def _is_int(value: Any) -> bool:
    return str(value).strip().lstrip("-").isdigit()


class Writes:
    def __init__(self, gateway: IntacctGateway) -> None:
        self.gw = gateway

    def _records_in(self, el: etree._Element, verb: str) -> list[tuple[ObjectDef, dict[str, Any]]]:
        children = [c for c in el if isinstance(c.tag, str)]
        if not children:
            raise FunctionFailed([err("BL01001973", f"No records to {verb}")])
        if len(children) > settings.INTACCT_MAX_RECORDS_PER_WRITE:
            raise FunctionFailed(
                [
                    err(
                        "BL01001973",
                        f"A {verb} function accepts at most "
                        f"{settings.INTACCT_MAX_RECORDS_PER_WRITE} records; got {len(children)}",
                        "Split the records over several functions.",
                    )
                ]
            )
        out = []
        for child in children:
            definition = self.gw.object_def(str(child.tag))
            if definition is None:
                raise FunctionFailed(
                    [err("BL01001973", f"Object definition {child.tag} not found")]
                )
            value = element_value(child)
            out.append((definition, value if isinstance(value, dict) else {}))
        return out

    def _validate(
        self, definition: ObjectDef, record: dict[str, Any], verb: str, *, creating: bool
    ) -> list[ErrorTuple]:
        could_not = err("BL01001973", f"Could not {verb} {definition.name.lower()} record!")
        problem = (
            self._unknown_fields(definition, record)
            or self._bad_integers(definition, record)
            or self._bad_relationship(definition, record)
            or (self._create_problem(definition, record) if creating else None)
        )
        return [problem, could_not] if problem else []

    @staticmethod
    def _unknown_fields(definition: ObjectDef, record: Mapping[str, Any]) -> ErrorTuple | None:
        unknown = [k for k in record if k not in definition.fields]
        if definition.custom and unknown:
            return err("BL01001973", f"Invalid field(s) {', '.join(unknown)} for {definition.name}")
        return None

    @staticmethod
    def _bad_integers(definition: ObjectDef, record: Mapping[str, Any]) -> ErrorTuple | None:
        if not definition.custom:
            return None
        for name in sorted(TICKET_INTEGER_FIELDS & set(record)):
            if str(record[name]).strip() and not _is_int(record[name]):
                return err("BL01001973", f"Field {name} must be an integer; got {record[name]!r}")
        return None

    def _bad_relationship(
        self, definition: ObjectDef, record: Mapping[str, Any]
    ) -> ErrorTuple | None:
        for related_by, target in definition.relationships.items():
            value = str(record.get(related_by) or "").strip()
            if value and (not value.isdigit() or int(value) not in self.gw.records[target]):
                return err(
                    "BL01001973",
                    f"Invalid {target.title()} '{value}' specified for field "
                    f"{related_by}: no {target} record with RECORDNO {value} exists",
                    f"Use the RECORDNO of an existing {target} record.",
                )
        return None

    def _create_problem(
        self, definition: ObjectDef, record: Mapping[str, Any]
    ) -> ErrorTuple | None:
        if definition.custom:
            return None
        if not str(record.get("NAME", "")).strip():
            return err("BL01001973", "Required field NAME is missing")
        id_value = str(record.get(definition.id_field or "", "")).strip()
        if id_value and self.gw.find_by_id(definition.name, id_value) is not None:
            return err(
                "BL34000061",
                f"Another {definition.name.title()} with the given value(s) "
                f"{id_value} already exists",
                "Use a unique value instead.",
            )
        return None

    @staticmethod
    def _typed(definition: ObjectDef, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        if definition.custom:
            for name in TICKET_INTEGER_FIELDS & set(out):
                text = str(out[name]).strip()
                out[name] = int(text) if text else None
        return out

    @staticmethod
    def _written(data: etree._Element, definition: ObjectDef, record: dict[str, Any]) -> None:
        child = sub(data, definition.name.lower())
        sub(child, definition.key_field, str(record[definition.key_field]))
        if definition.id_field:
            sub(child, definition.id_field, str(record.get(definition.id_field, "")))

    def create(self, el: etree._Element) -> etree._Element:
        data = etree.Element("data", listtype="objects")
        errors: list[ErrorTuple] = []
        created = 0
        for definition, fields in self._records_in(el, "create"):
            problems = self._validate(definition, fields, "create", creating=True)
            if problems:
                errors.extend(problems)
                continue
            self._written(data, definition, self._insert(definition, fields))
            created += 1
        data.set("count", str(created))
        if errors:
            raise FunctionFailed(errors, data)
        return data

    def _insert(self, definition: ObjectDef, fields: dict[str, Any]) -> dict[str, Any]:
        now = self.gw.clock()
        record = self._typed(definition, fields)
        record.pop(definition.key_field, None)
        key = self.gw.new_key()
        record[definition.key_field] = key
        if definition.id_field and not definition.custom and not record.get(definition.id_field):
            record[definition.id_field] = f"{definition.name[0]}{key:05d}"
        record["WHENCREATED"] = now
        record["WHENMODIFIED"] = now
        self.gw.records[definition.name][key] = record
        self.gw.stats.writes[definition.name] += 1
        self.gw.triggers.changed(definition.name, record, "create")
        return record

    def update(self, el: etree._Element) -> etree._Element:
        data = etree.Element("data", listtype="objects")
        errors: list[ErrorTuple] = []
        updated = 0
        for definition, fields in self._records_in(el, "update"):
            record = self._locate(definition, fields)
            if record is None:
                shown = fields.get(definition.key_field) or fields.get(definition.id_field or "")
                errors.append(
                    err(
                        "BL01001973",
                        f"Cannot find {definition.name.lower()} with key '{shown}' to update.",
                    )
                )
                continue
            changes = {
                k: v
                for k, v in fields.items()
                if k != definition.key_field and k not in _NOT_WRITABLE
            }
            problems = self._validate(definition, changes, "update", creating=False)
            if problems:
                errors.extend(problems)
                continue
            self.gw.touch(definition.name, record, self._typed(definition, changes))
            self._written(data, definition, record)
            updated += 1
        data.set("count", str(updated))
        if errors:
            raise FunctionFailed(errors, data)
        return data

    def _locate(self, definition: ObjectDef, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        key = str(fields.get(definition.key_field, "")).strip()
        if key.isdigit():
            return self.gw.records[definition.name].get(int(key))
        if definition.id_field and not definition.custom:
            id_value = str(fields.get(definition.id_field, "")).strip()
            if id_value:
                return self.gw.find_by_id(definition.name, id_value)
        return None

    def delete(self, el: etree._Element) -> None:
        definition = self.gw.reads.require_object(el)
        keys = keys_of(el, "delete")
        records = self.gw.records[definition.name]
        missing = [k for k in keys if not k.isdigit() or int(k) not in records]
        if missing:
            raise FunctionFailed(
                [
                    err(
                        "BL01001973",
                        f"Cannot find {definition.name.lower()} with key '{missing[0]}' to delete.",
                    )
                ]
            )
        for key in keys:
            del records[int(key)]
            self.gw.stats.writes[definition.name] += 1

    def legacy_create(self, name: str, el: etree._Element) -> etree._Element:
        """2.1-style `create_<object>` answers with `<key>` instead of `<data>`."""
        object_name = name.removeprefix("create_")
        fields = element_value(el)
        key = ""
        if isinstance(fields, dict):
            key = str(fields.get(f"{object_name}id") or fields.get("key") or "")
        key = key or str(self.gw.new_key())
        self.gw.stats.writes[f"legacy:{object_name}"] += 1
        key_el = etree.Element("key")
        key_el.text = key
        return key_el
