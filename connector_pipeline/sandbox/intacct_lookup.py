"""The `lookup` answer: an object's fields and relationships.

Shape after the recorded answers lookup_vendor_data_element_live.xml and
lookup_apbill_data_element_live.xml (../shared/fixtures/intacct): `<data listtype="All"
count="1"><Type Name DocumentType><Fields><Field>` with ID, LABEL, DESCRIPTION, REQUIRED,
READONLY, DATATYPE, ISCUSTOM in that order, then `<Relationships><Relationship>` with
OBJECTPATH, OBJECTNAME, LABEL, RELATIONSHIPTYPE, RELATEDBY.
"""

from __future__ import annotations

from lxml import etree

from connector_pipeline.sandbox.intacct_data import ObjectDef
from connector_pipeline.sandbox.intacct_envelope import sub

NO_DESCRIPTION = "No description specified"  # what the live answers say for most fields


def _label(name: str) -> str:
    return name.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def lookup_data(definition: ObjectDef) -> etree._Element:
    data = etree.Element("data", listtype="All", count="1")
    type_el = sub(data, "Type")
    type_el.set("Name", definition.name)
    type_el.set("DocumentType", "")
    fields_el = sub(type_el, "Fields")
    for spec in definition.lookup_fields():
        field_el = sub(fields_el, "Field")
        sub(field_el, "ID", spec.name)
        sub(field_el, "LABEL", _label(spec.name))
        sub(field_el, "DESCRIPTION", NO_DESCRIPTION)
        sub(field_el, "REQUIRED", "true" if spec.required else "false")
        sub(field_el, "READONLY", "true" if spec.readonly else "false")
        sub(field_el, "DATATYPE", spec.datatype)
        # In a custom object every field but the system ones is the customer's own.
        sub(field_el, "ISCUSTOM", "true" if definition.custom and not spec.readonly else "false")
    relationships = sub(type_el, "Relationships")
    for related_by, target in definition.relationships.items():
        rel = sub(relationships, "Relationship")
        sub(rel, "OBJECTPATH", f"R{target}" if definition.custom else target)
        sub(rel, "OBJECTNAME", target)
        sub(rel, "LABEL", target.title())
        sub(rel, "RELATIONSHIPTYPE", "MANY2ONE")
        sub(rel, "RELATEDBY", related_by)
    return data
