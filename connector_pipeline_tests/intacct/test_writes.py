"""Writing: chunking, per-record outcomes, the ticket object's relationship, Unicode."""

from __future__ import annotations

from typing import Any

import pytest

from connector_pipeline import settings
from connector_pipeline.intacct import IntacctResultError, sanitize_xml_text
from connector_pipeline.outcome import FailureKind, WriteOutcome
from connector_pipeline_tests.intacct.conftest import RunningSandbox

TICKETS = settings.INTACCT_TICKET_OBJECT


def _vendor_recordnos(sandbox: RunningSandbox) -> list[int]:
    return sorted(v["RECORDNO"] for v in sandbox.get("records/VENDOR"))


def _ticket(n: int, vendor: int) -> dict[str, object]:
    return {
        "name": f"ZD-{n}",
        "ticket_id": n,
        "subject": f"Invoice question {n}",
        "status": "open",
        "priority": "normal",
        "ticket_type": "question",
        "requester_id": 9_000 + n,
        "organization_id": 7_000 + n,
        "zendesk_created_at": "2024-05-01T10:00:00Z",
        "zendesk_updated_at": "2024-05-02T11:00:00Z",
        "RVENDOR": vendor,
    }


def test_create_chunks_at_100_and_maps_every_result(gateway: RunningSandbox) -> None:
    vendors = _vendor_recordnos(gateway)
    records = [_ticket(n, vendors[n % len(vendors)]) for n in range(1, 251)]
    with gateway.client() as client:
        results = client.create(TICKETS, records)
        assert client.calls_by_function()["create"] == 3
    assert [r.index for r in results] == list(range(250))
    assert all(r.ok and r.key for r in results)
    stored = {str(t["id"]): t for t in gateway.get(f"records/{TICKETS}")}
    assert len(stored) == 250
    for result, record in zip(results, records, strict=True):
        assert result.key is not None
        assert stored[result.key]["ticket_id"] == record["ticket_id"]
        assert stored[result.key]["RVENDOR"] == record["RVENDOR"]


def test_partial_failure_is_mapped_to_the_right_records(gateway: RunningSandbox) -> None:
    vendor = _vendor_recordnos(gateway)[0]
    records = [_ticket(1, vendor), _ticket(2, 99_999_999), _ticket(3, vendor)]
    with gateway.client() as client:
        results = client.create(TICKETS, records)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].key is None
    assert results[1].errors[0].errorno == "BL01001973"
    assert "RVENDOR" in results[1].errors[0].description2
    assert results[1].outcome.kind is FailureKind.INVALID
    assert results[0].outcome == WriteOutcome.written(results[0].key)
    stored = gateway.get(f"records/{TICKETS}")
    assert sorted(t["ticket_id"] for t in stored) == [1, 3]
    assert {r.key for r in results if r.ok} == {str(t["id"]) for t in stored}


def test_duplicate_vendor_id_fails_with_the_real_error_shape(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        results = client.create(
            "VENDOR", [{"VENDORID": "V00001", "NAME": "Dup"}, {"VENDORID": "NEW1", "NAME": "New"}]
        )
    assert [r.ok for r in results] == [False, True]
    assert [e.errorno for e in results[0].errors] == ["BL34000061", "BL01001973"]
    assert results[0].errors[0].correction == "Use a unique value instead."
    assert results[0].outcome.kind is FailureKind.CONFLICT
    assert "BL34000061" in results[0].outcome.message
    assert results[1].record is not None and results[1].record["VENDORID"] == "NEW1"


def test_update_and_read_back_and_delete(gateway: RunningSandbox) -> None:
    vendors = _vendor_recordnos(gateway)
    with gateway.client() as client:
        (created,) = client.create(TICKETS, [_ticket(42, vendors[0])])
        (updated,) = client.update(
            TICKETS, [{"id": created.key, "status": "solved", "RVENDOR": vendors[1]}]
        )
        assert updated.ok and updated.key == created.key
        (row,) = client.read(TICKETS, [created.key])
        assert row["status"] == "solved"
        assert row["RVENDOR"] == str(vendors[1])
        assert row["WHENMODIFIED"] >= row["WHENCREATED"]
        (missing,) = client.update(TICKETS, [{"id": "123456789", "status": "x"}])
        assert not missing.ok and "Cannot find" in missing.errors[0].description2
        assert missing.outcome.kind is FailureKind.NOT_FOUND
        client.delete(TICKETS, [created.key])
        assert client.read(TICKETS, [created.key]) == []
        with pytest.raises(IntacctResultError, match="to delete"):
            client.delete(TICKETS, [created.key])


def test_unknown_ticket_field_and_bad_integer_are_rejected(gateway: RunningSandbox) -> None:
    vendor = _vendor_recordnos(gateway)[0]
    with gateway.client() as client:
        bad_field, bad_int = client.create(
            TICKETS,
            [
                {**_ticket(1, vendor), "colour": "blue"},
                {**_ticket(2, vendor), "ticket_id": "twelve"},
            ],
        )
    # The gateway reports a function's errors together, so each failed record carries all.
    for failed in (bad_field, bad_int):
        text = " ".join(e.description2 for e in failed.errors)
        assert not failed.ok and "colour" in text and "must be an integer" in text


def _all_of_unicode() -> str:
    """One character from every 61st code point, across every plane, controls included."""
    return "".join(chr(c) for c in range(0, 0x110000, 61) if not 0xD800 <= c <= 0xDFFF)


def test_control_characters_and_all_of_unicode_round_trip(gateway: RunningSandbox) -> None:
    vendor = _vendor_recordnos(gateway)[0]
    texts = [
        "tab\tnewline\ncarriage\rreturn",
        "nul\x00 bell\x07 vt\x0b esc\x1b del\x7f c1\x85\x9f",
        "quotes ' \" & < > ]]> <![CDATA[x]]>",
        "emoji 🎉👩‍💻 and 🇨🇦, CJK 漢字, RTL עברית العربية, combining é",
        "noncharacters \ufffe\uffff and \U0010ffff",
        _all_of_unicode(),
    ]
    records = [{**_ticket(n, vendor), "subject": text} for n, text in enumerate(texts, 1)]
    with gateway.client() as client:
        results = client.create(TICKETS, records)
        assert all(r.ok for r in results)
        back = client.read(TICKETS, [r.key for r in results])
    by_id: dict[str | None, dict[str, Any]] = {str(r["id"]): r for r in back}
    for result, text in zip(results, texts, strict=True):
        assert by_id[result.key]["subject"] == sanitize_xml_text(text)
    assert "\x00" not in by_id[results[1].key]["subject"]
    assert "🎉" in by_id[results[3].key]["subject"]


def test_vendor_nested_fields_round_trip(gateway: RunningSandbox) -> None:
    with gateway.client() as client:
        (created,) = client.create(
            "VENDOR",
            [
                {
                    "VENDORID": "NESTED1",
                    "NAME": "Nested Ünïcode Vendor",
                    "DISPLAYCONTACT": {
                        "PRINTAS": "Nested",
                        "EMAIL1": "ap@nested.example",
                        "MAILADDRESS": {"CITY": "Zürich", "COUNTRY": "Switzerland"},
                    },
                }
            ],
        )
        assert created.ok
        (vendor,) = client.query_in(
            "VENDOR", "VENDORID", ["NESTED1"], ["NAME", "DISPLAYCONTACT.MAILADDRESS.CITY"]
        )
    assert vendor["NAME"] == "Nested Ünïcode Vendor"
    assert vendor["DISPLAYCONTACT"]["MAILADDRESS"]["CITY"] == "Zürich"


def test_sandbox_refuses_more_than_100_records_per_function(gateway: RunningSandbox) -> None:
    from connector_pipeline.intacct import functions as fn
    from connector_pipeline_tests.intacct.test_reads import _raw_function

    vendor = _vendor_recordnos(gateway)[0]
    body = fn.create(TICKETS, [_ticket(n, vendor) for n in range(101)])
    result = _raw_function(gateway, body)
    assert result.status == "failure"  # type: ignore[attr-defined]
    assert "at most 100 records" in result.errors[0].description2  # type: ignore[attr-defined]
    assert gateway.get(f"records/{TICKETS}") == []
