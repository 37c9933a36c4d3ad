"""zenpy (facetoe/zenpy, a widely used Zendesk client) against the sandbox Zendesk, unchanged
apart from where it connects: zenpy's own ZENPY_FORCE_SCHEME / ZENPY_FORCE_NETLOC
settings point it at the sandbox's host and port instead of `{subdomain}.zendesk.com`.

Everything a connector does is driven through it: users/me, organizations (list, create,
update, show_many by external id, incremental export), organization
fields, create_many with its job status, tickets (create with audit, update) and the
incremental ticket export with paging.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from zenpy import Zenpy
from zenpy.lib.api_objects import Comment, Organization, OrganizationField, Ticket
from zenpy.lib.exception import APIException

from connector_pipeline_tests.zendesk.conftest import RunningSandbox, running_sandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as running:
        yield running


def zenpy_for(running: RunningSandbox, monkeypatch: pytest.MonkeyPatch, **over: Any) -> Zenpy:
    parts = urlsplit(running.url)
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", parts.scheme)
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", parts.netloc)
    credentials = {"email": running.config.email, "token": running.config.api_token, **over}
    return Zenpy(subdomain=running.config.subdomain, timeout=15, **credentials)


def test_users_me_is_the_admin(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    me = zenpy_for(sandbox, monkeypatch).users.me()
    assert me.role == "admin"
    assert me.email == sandbox.config.email


def test_a_non_admin_gets_403_on_the_incremental_export(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = zenpy_for(sandbox, monkeypatch)
    with sandbox.scenario() as s:
        s.post("/_sandbox/config", json={"user_role": "agent"}).raise_for_status()
    assert client.users.me().role == "agent"
    with pytest.raises(APIException) as refused:
        list(client.tickets.incremental(start_time=0))
    assert refused.value.response.status_code == 403


def test_organizations_create_update_find_and_count(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = zenpy_for(sandbox, monkeypatch)
    created = client.organizations.create(Organization(name="Acme", external_id="V00001"))
    assert created.id and created.external_id == "V00001"
    created.notes = "Net 30"
    updated = client.organizations.update(created)
    assert updated.notes == "Net 30"
    # By external id, case-insensitive as in Zendesk. (zenpy's `organizations.external()`
    # is not used: it builds `search.json?external_id=X?include=None&...`, a query whose
    # external_id is "X?include=None" on any server.)
    found = list(client.organizations(external_ids=["v00001"]))
    assert [o.id for o in found] == [created.id]
    assert [o.name for o in client.organizations(ids=[created.id])] == ["Acme"]
    assert [o.name for o in client.organizations()] == ["Acme"]
    exported = list(client.organizations.incremental(start_time=0))
    assert [o.id for o in exported] == [created.id]


def test_create_many_job_status_reaches_completed(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = zenpy_for(sandbox, monkeypatch)
    job = client.organizations.create(
        [Organization(name=f"Org {n}", external_id=f"E{n}") for n in range(3)]
    )
    deadline = time.monotonic() + 30
    while job.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.job_status(id=job.id)
    assert job.status == "completed"
    assert sorted(r.status for r in job.results) == ["Created"] * 3
    assert sorted(o.external_id for o in client.organizations()) == ["E0", "E1", "E2"]


def test_organization_fields_list_and_create(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = zenpy_for(sandbox, monkeypatch)
    field = client.organization_fields.create(
        OrganizationField(key="vendor_status", title="Vendor status", type="text")
    )
    assert field.id and field.type == "text"
    assert [f.key for f in client.organization_fields()] == ["vendor_status"]


def test_tickets_create_update_and_incremental_export_pages(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = zenpy_for(sandbox, monkeypatch)
    audit = client.tickets.create(Ticket(subject="Hello", comment=Comment(body="First words")))
    ticket = audit.ticket
    assert ticket.description == "First words"
    assert audit.audit.events[0]["type"] == "Comment"
    ticket.status = "open"
    changed = client.tickets.update(ticket)
    assert changed.ticket.status == "open"
    for n in range(4):
        client.tickets.create(Ticket(subject=f"T{n}", description=f"d{n}"))
    # Cursor paging, two per page: zenpy follows after_url back to the sandbox.
    exported = list(client.tickets.incremental(start_time=0, per_page=2))
    assert sorted(t.id for t in exported) == sorted({t.id for t in exported})
    assert len(exported) == 5
    by_time = list(client.tickets.incremental(start_time=0, paginate_by_time=True))
    assert {t.id for t in by_time} == {t.id for t in exported}
