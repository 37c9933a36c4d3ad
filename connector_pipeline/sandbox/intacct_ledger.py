"""Accounts payable and receivable in the sandbox company: bills (APBILL), bill payments
(APPYMT), invoices (ARINVOICE) and receipts (ARPYMT), answering `query` / `readByQuery`
like VENDOR does, plus a scenario API to post a bill, pay it and put a vendor on hold.

APBILL's fields and STATE values are those of the live `lookup` answer
lookup_apbill_data_element_live.xml (../shared/fixtures/intacct). ARINVOICE, APPYMT and
ARPYMT have no recording: ARINVOICE mirrors APBILL with CUSTOMERID, and the payments
carry the party's id, STATE, WHENPAID, TOTALENTERED and CURRENCY. Both are UNCONFIRMED.

What a payment does here: it lowers the bill's TOTALDUE, raises TOTALPAID, sets STATE to
`Partially Paid` or `Paid` (and WHENPAID when paid in full), and stamps the bill's
WHENMODIFIED, as an edit of the bill. That the real service stamps the bill when a payment
is applied is UNCONFIRMED; that it does not stamp the vendor is reported
(Intacct/intacct-sdk-net#223), so the sandbox does not either.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from connector_pipeline.sandbox.intacct_data import ObjectDef, to_json
from connector_pipeline.sandbox.intacct_fields import parse_catalogue

if TYPE_CHECKING:
    from connector_pipeline.sandbox.intacct_gateway import IntacctGateway

# From the APBILL lookup recording (a subset: what a bill read selects, and its neighbours).
APBILL_CATALOGUE = parse_catalogue(
    """
RECORDNO:I~ RECORDTYPE:T RECORDID:T STATE:T~ RAWSTATE:T VENDORID:T VENDORNAME:T
DOCNUMBER:T DESCRIPTION:T TERMNAME:T WHENCREATED:D WHENPOSTED:D WHENDUE:D WHENPAID:D
PAYMENTPRIORITY:T ONHOLD:B BASECURR:T CURRENCY:T TOTALENTERED:N TOTALSELECTED:N
TOTALPAID:N TOTALDUE:C TRX_TOTALENTERED:N TRX_TOTALPAID:N TRX_TOTALDUE:N
AUWHENCREATED:S WHENMODIFIED:S CREATEDBY:I MODIFIEDBY:I DUE_IN_DAYS:T
"""
)
_AR_NAMES = {"VENDORID": "CUSTOMERID", "VENDORNAME": "CUSTOMERNAME"}
ARINVOICE_CATALOGUE = tuple(
    replace(spec, name=_AR_NAMES.get(spec.name, spec.name)) for spec in APBILL_CATALOGUE
)
PAYMENT_CATALOGUE_TEXT = """
RECORDNO:I~ RECORDTYPE:T DOCNUMBER:T DESCRIPTION:T {party}:T STATE:T~ PAYMENTMETHOD:T
WHENCREATED:D WHENPAID:D CURRENCY:T BASECURR:T TOTALENTERED:N TOTALPAID:N
WHENMODIFIED:S CREATEDBY:I MODIFIEDBY:I
"""
APPYMT_CATALOGUE = parse_catalogue(PAYMENT_CATALOGUE_TEXT.format(party="VENDORID"))
ARPYMT_CATALOGUE = parse_catalogue(PAYMENT_CATALOGUE_TEXT.format(party="CUSTOMERID"))

DOCUMENTS = {"VENDOR": "APBILL", "CUSTOMER": "ARINVOICE"}
PAYMENTS = {"VENDOR": "APPYMT", "CUSTOMER": "ARPYMT"}
PARTY_ID = {"VENDOR": "VENDORID", "CUSTOMER": "CUSTOMERID"}
CENTS = Decimal("0.01")


def ledger_object_defs() -> dict[str, ObjectDef]:
    """The four objects, keyed by RECORDNO like every standard object."""
    return {
        "APBILL": ObjectDef("APBILL", "RECORDNO", "RECORDID", APBILL_CATALOGUE),
        "APPYMT": ObjectDef("APPYMT", "RECORDNO", None, APPYMT_CATALOGUE),
        "ARINVOICE": ObjectDef("ARINVOICE", "RECORDNO", "RECORDID", ARINVOICE_CATALOGUE),
        "ARPYMT": ObjectDef("ARPYMT", "RECORDNO", None, ARPYMT_CATALOGUE),
    }


def _money(value: Decimal) -> str:
    return str(value.quantize(CENTS))


class Ledger:
    """Posts, pays and seeds bills and invoices in a gateway's records."""

    def __init__(self, gateway: IntacctGateway) -> None:
        self.gw = gateway

    def _party(self, party: str, party_id: str) -> dict[str, Any]:
        record = self.gw.find_by_id(party, party_id)
        if record is None:
            raise KeyError(f"{party} {party_id} not found")
        return record

    def _stamp(self, obj: str, record: dict[str, Any], *, scenario: bool = True) -> None:
        now = self.gw.clock()
        record["WHENMODIFIED"] = max(now, record.get("WHENMODIFIED") or now)
        (self.gw.stats.scenario_writes if scenario else self.gw.stats.writes)[obj] += 1

    def post(
        self,
        party: str,
        party_id: str,
        amount: Decimal,
        due: date,
        *,
        state: str = "Posted",
        currency: str = "USD",
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """A bill (invoice) for `party_id`, in `state`, due on `due`."""
        obj = DOCUMENTS[party]
        owner = self._party(party, party_id)
        with self.gw.lock:
            key = self.gw.new_key()
            now = when or self.gw.clock()
            record = {
                "RECORDNO": key,
                "RECORDTYPE": "apbill" if party == "VENDOR" else "arinvoice",
                "RECORDID": f"{'BILL' if party == 'VENDOR' else 'INV'}-{key}",
                "STATE": state,
                "RAWSTATE": state[:1],
                PARTY_ID[party]: party_id,
                ("VENDORNAME" if party == "VENDOR" else "CUSTOMERNAME"): owner.get("NAME"),
                "WHENCREATED": now.date(),
                "WHENPOSTED": now.date() if state == "Posted" else None,
                "WHENDUE": due,
                "CURRENCY": currency,
                "BASECURR": currency,
                "TOTALENTERED": _money(amount),
                "TOTALPAID": "0.00",
                "TOTALDUE": _money(amount),
                "TRX_TOTALENTERED": _money(amount),
                "TRX_TOTALPAID": "0.00",
                "TRX_TOTALDUE": _money(amount),
                "AUWHENCREATED": now,
                "WHENMODIFIED": now,
                "CREATEDBY": "1",
                "MODIFIEDBY": "1",
            }
            self.gw.records[obj][key] = record
            if when is None:
                self.gw.stats.scenario_writes[obj] += 1
            return record

    def pay(
        self,
        party: str,
        document_no: int,
        amount: Decimal | None,
        paid_on: date,
        *,
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """Apply a payment to a bill (invoice); the whole amount due when `amount` is None."""
        obj, payment_obj = DOCUMENTS[party], PAYMENTS[party]
        with self.gw.lock:
            bill = self.gw.records[obj].get(document_no)
            if bill is None:
                raise KeyError(f"{obj} {document_no} not found")
            due = Decimal(bill["TOTALDUE"])
            paying = due if amount is None else amount
            if paying <= 0 or paying > due:
                raise ValueError(f"payment of {paying} on {obj} {document_no} owing {due}")
            left = due - paying
            bill["TOTALDUE"] = bill["TRX_TOTALDUE"] = _money(left)
            paid = Decimal(bill["TOTALPAID"]) + paying
            bill["TOTALPAID"] = bill["TRX_TOTALPAID"] = _money(paid)
            bill["STATE"] = "Paid" if left == 0 else "Partially Paid"
            bill["WHENPAID"] = paid_on if left == 0 else bill.get("WHENPAID")
            now = when or self.gw.clock()
            bill["WHENMODIFIED"] = max(now, bill.get("WHENMODIFIED") or now)
            key = self.gw.new_key()
            payment = {
                "RECORDNO": key,
                "RECORDTYPE": "appayment" if party == "VENDOR" else "arpayment",
                "DOCNUMBER": f"PAY-{key}",
                "DESCRIPTION": f"Payment of {bill['RECORDID']}",
                PARTY_ID[party]: bill[PARTY_ID[party]],
                "STATE": "Complete",
                "PAYMENTMETHOD": "EFT",
                "WHENCREATED": paid_on,
                "WHENPAID": paid_on,
                "CURRENCY": bill["CURRENCY"],
                "BASECURR": bill["BASECURR"],
                "TOTALENTERED": _money(paying),
                "TOTALPAID": _money(paying),
                "WHENMODIFIED": now,
                "CREATEDBY": "1",
                "MODIFIEDBY": "1",
            }
            self.gw.records[payment_obj][key] = payment
            if when is None:
                self.gw.stats.scenario_writes[obj] += 1
                self.gw.stats.scenario_writes[payment_obj] += 1
            return payment

    def hold(self, party: str, party_id: str, on_hold: bool) -> dict[str, Any]:
        """Put a vendor (customer) on hold or take it off: an edit of its own record."""
        with self.gw.lock:
            record = self._party(party, party_id)
            self.gw.touch(party, record, {"ONHOLD": "true" if on_hold else "false"}, scenario=True)
            return record

    def seed(self, party: str, per_party: int, seed: int) -> dict[str, int]:
        """Up to `per_party` bills for every vendor (invoices for every customer), some
        paid, some overdue, stamped in the past so they are not "changed today"."""
        rng = random.Random(f"{seed}:{party}:ledger")
        now = self.gw.clock()
        posted = paid = 0
        with self.gw.lock:
            for owner in list(self.gw.records[party].values()):
                for _ in range(rng.randint(0, per_party)):
                    created = now - timedelta(
                        days=rng.randint(1, 120), seconds=rng.randint(0, 86_399)
                    )
                    due = (created + timedelta(days=30)).date()
                    amount = Decimal(rng.randint(1_000, 500_000)) / 100
                    bill = self.post(party, owner[PARTY_ID[party]], amount, due, when=created)
                    posted += 1
                    if rng.random() < 0.5:
                        paid_on = min(now.date(), due + timedelta(days=rng.randint(-20, 20)))
                        # Paid some days after posting, and never in the last hour:
                        # seed data is history, not today's changes.
                        at = created + timedelta(days=rng.randint(1, 20))
                        at = min(at, now - timedelta(hours=1, seconds=rng.randint(0, 86_399)))
                        self.pay(party, bill["RECORDNO"], None, paid_on, when=max(at, created))
                        paid += 1
        return {"posted": posted, "paid": paid}


# ----------------------------------------------------------------------------- scenario API


class SeedLedger(BaseModel):
    party: str = "VENDOR"
    per_party: int = 3
    seed: int = 0


class PostDocument(BaseModel):
    party_id: str
    amount: str
    due_date: date
    state: str = "Posted"
    currency: str = "USD"


class PayDocument(BaseModel):
    record_no: int
    amount: str | None = None
    paid_on: date


class Hold(BaseModel):
    party_ids: list[str]
    on_hold: bool = True


def _party(value: str) -> str:
    party = value.upper()
    if party not in DOCUMENTS:
        raise HTTPException(422, f"party must be VENDOR or CUSTOMER, got {value!r}")
    return party


def ledger_router(gateway: IntacctGateway, prefix: str = "/_sandbox") -> APIRouter:
    """Scenario endpoints: seed bills, post a bill (invoice), pay it, put a party on hold."""
    router = APIRouter()
    ledger = Ledger(gateway)

    @router.post(f"{prefix}/ledger/seed")
    def seed(body: SeedLedger) -> dict[str, int]:
        return ledger.seed(_party(body.party), body.per_party, body.seed)

    @router.post(prefix + "/{party}/documents")
    def post_document(party: str, body: PostDocument) -> dict[str, Any]:
        try:
            record = ledger.post(
                _party(party),
                body.party_id,
                Decimal(body.amount),
                body.due_date,
                state=body.state,
                currency=body.currency,
            )
        except KeyError as exc:
            raise HTTPException(404, str(exc)) from None
        return dict(to_json(record))

    @router.post(prefix + "/{party}/payments")
    def pay(party: str, body: PayDocument) -> dict[str, Any]:
        try:
            payment = ledger.pay(
                _party(party),
                body.record_no,
                None if body.amount is None else Decimal(body.amount),
                body.paid_on,
            )
        except KeyError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return dict(to_json(payment))

    @router.post(prefix + "/{party}/hold")
    def hold(party: str, body: Hold) -> dict[str, Any]:
        try:
            for party_id in body.party_ids:
                ledger.hold(_party(party), party_id, body.on_hold)
        except KeyError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"on_hold" if body.on_hold else "released": body.party_ids}

    return router
