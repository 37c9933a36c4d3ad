"""The Intacct sandbox's scenario switches that `ml-connector check` is tested with, and the
scenario API's refusal of text the gateway could not serve."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connector_pipeline import settings
from connector_pipeline.intacct import IntacctClient, IntacctResultError
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig, create_app, sandbox_env
from connector_pipeline_tests.support import serve_asgi

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.1, "retry_budget_s": 10.0, "timeout_s": 15.0}


class Running:
    def __init__(self, url: str, config: IntacctSandboxConfig) -> None:
        self.url, self.config = url, config

    def client(self) -> IntacctClient:
        return IntacctClient.from_env(sandbox_env(self.url, self.config), **FAST)

    def scenario(self, path: str, body: object) -> httpx.Response:
        return httpx.post(f"{self.url}/_sandbox/{path}", json=body, timeout=30)


@pytest.fixture
def running() -> Iterator[Running]:
    config = IntacctSandboxConfig(seed_vendors=3)
    with serve_asgi(create_app(config)) as server:
        yield Running(server.url, config)


def test_the_ticket_object_can_be_removed(running: Running) -> None:
    with running.client() as client:
        assert client.lookup(settings.INTACCT_TICKET_OBJECT)["Fields"]
    running.scenario("config", {"ticket_object_exists": False}).raise_for_status()
    with running.client() as client, pytest.raises(IntacctResultError, match="not found"):
        client.lookup(settings.INTACCT_TICKET_OBJECT)
    running.scenario("config", {"ticket_object_exists": True}).raise_for_status()
    with running.client() as client:
        assert client.lookup(settings.INTACCT_TICKET_OBJECT)["Fields"]


def test_the_relationship_field_can_be_removed(running: Running) -> None:
    running.scenario("config", {"ticket_relationship_exists": False}).raise_for_status()
    with running.client() as client:
        described = client.lookup(settings.INTACCT_TICKET_OBJECT)
        fields = {f["ID"] for f in described["Fields"]["Field"]}
        assert settings.INTACCT_TICKET_VENDOR_FIELD not in fields
        assert not described.get("Relationships")
        (result,) = client.create(
            settings.INTACCT_TICKET_OBJECT,
            [{"name": "ZD-1", settings.INTACCT_TICKET_VENDOR_FIELD: "101"}],
        )
    assert not result.ok
    assert settings.INTACCT_TICKET_VENDOR_FIELD in result.errors[0].description2


def test_read_user_formatting_reports_a_configured_date_format(running: Running) -> None:
    running.scenario(
        "config", {"user_dateformat": ".dmY", "user_gmt_offset": "-05:00", "user_clock": "12"}
    ).raise_for_status()
    with running.client() as client:
        formatting = client.formatting
    assert (formatting.dateformat, formatting.gmtoffset, formatting.clock) == (
        ".dmY",
        "-05:00",
        "12",
    )
    refused = running.scenario("config", {"user_gmt_offset": "somewhere"})
    assert refused.status_code == 422


def test_an_unsupported_date_format_is_reported_as_configured(running: Running) -> None:
    running.scenario("config", {"user_dateformat": "-Ymd-extra"}).raise_for_status()
    with running.client() as client:
        assert client.formatting.dateformat == "-Ymd-extra"


@pytest.mark.parametrize(
    ("vendor", "named"),
    [
        ({"VENDORID": "BAD1", "NAME": "Bell\x07 Supply"}, "NAME holds the character U+0007"),
        (
            {"VENDORID": "BAD2", "NAME": "ok", "DISPLAYCONTACT": {"EMAIL1": "a\x00@b"}},
            "DISPLAYCONTACT.EMAIL1 holds the character U+0000",
        ),
        ({"VENDORID": "BAD3", "NAME": "ok", "not a name": "x"}, "'not a name'"),
    ],
)
def test_scenario_text_the_gateway_cannot_serve_is_refused(
    running: Running, vendor: dict[str, object], named: str
) -> None:
    refused = running.scenario("vendors", {"vendors": [vendor]})
    assert refused.status_code == 422
    assert named in refused.json()["detail"]
    # Nothing was stored, and the gateway still answers every read.
    with running.client() as client:
        page = client.query("VENDOR", ["VENDORID", "NAME"], page_size=100)
    assert "BAD" not in " ".join(str(r["VENDORID"]) for r in page.records)
