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
from connector_pipeline.sandbox.intacct_fields import valid_values

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
        allowed = valid_values(spec) if not definition.custom else ()
        if allowed:
            values_el = sub(field_el, "VALIDVALUES")
            for value in allowed:
                sub(values_el, "VALIDVALUE", value)
        # In a custom object every field but the system ones is the customer's own.
        sub(field_el, "ISCUSTOM", "true" if definition.custom and not spec.readonly else "false")
    relationships = sub(type_el, "Relationships")
    for related_by, target in definition.relationships.items():
        rel = sub(relationships, "Relationship")
        # Custom objects: the path as the reference documents it for a custom object
        # related to CUSTOMER (`R_attendee_customer`); the object name upper case as the
        # live APBILL lookup shows its VENDOR relationship. Where the two sources speak of
        # different objects, each is followed for the part it shows.
        path = f"R_{definition.name.lower()}_{target.lower()}" if definition.custom else target
        sub(rel, "OBJECTPATH", path)
        sub(rel, "OBJECTNAME", target)
        sub(rel, "LABEL", target.title())
        sub(rel, "RELATIONSHIPTYPE", "MANY2ONE")
        sub(rel, "RELATEDBY", related_by)
    return data


# inspect's Platform type names for lookup's DATATYPEs (as paired in the recording).
_INSPECT_TYPES = {
    "INTEGER": ("Pt_FieldInt", "integer"),
    "BOOLEAN": ("Pt_FieldBoolean", "boolean"),
    "DECIMAL": ("Pt_FieldDouble", "number"),
    "CURRENCY": ("Pt_FieldDouble", "number"),
    "PERCENT": ("Pt_FieldDouble", "number"),
    "TIMESTAMP": ("Pt_FieldDateTime", "datetime"),
    "DATE": ("Pt_FieldDate", "date"),
}
_FIRST_INSPECT_ID = 999_502_600_000_001


def inspect_data(definition: ObjectDef, *, detail: bool) -> etree._Element:
    """The `inspect` answer. With detail="1": the shape of the recorded
    inspect_customer_detail_live.xml (Attributes, then Fields with Name, GroupName,
    dataName, externalDataName, isRequired, isReadOnly, maxLength, DisplayLabel,
    Description, id). Without detail: SYNTHETIC, field names only, as documented."""
    data = etree.Element("data", listtype="All", count="1")
    type_el = sub(data, "Type")
    type_el.set("Name", definition.name)
    if detail:
        attributes = sub(type_el, "Attributes")
        singular = definition.name.replace("_", " ").title()
        sub(attributes, "SingularName", singular)
        sub(attributes, "PluralName", f"{singular}s")
        sub(attributes, "Description", "")
    fields_el = sub(type_el, "Fields")
    for position, spec in enumerate(definition.lookup_fields()):
        if not detail:
            sub(fields_el, "Field", spec.name)
            continue
        data_name, external = _INSPECT_TYPES.get(spec.datatype, ("Pt_FieldString", "string"))
        field_el = sub(fields_el, "Field")
        sub(field_el, "Name", spec.name)
        sub(field_el, "GroupName", "")
        sub(field_el, "dataName", data_name)
        sub(field_el, "externalDataName", external)
        sub(field_el, "isRequired", "true" if spec.required else "false")
        sub(field_el, "isReadOnly", "true" if spec.readonly else "false")
        sub(field_el, "maxLength", "0")
        sub(field_el, "DisplayLabel", _label(spec.name))
        sub(field_el, "Description", _label(spec.name))
        sub(field_el, "id", str(_FIRST_INSPECT_ID + position))
    return data
