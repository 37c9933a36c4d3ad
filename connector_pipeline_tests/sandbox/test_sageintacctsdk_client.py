"""fylein's sageintacctsdk (PyPI `sageintacctsdk`) against the sandbox gateway, unchanged
apart from where it connects.

The SDK has no setting for the gateway URL: every API object starts from
`https://api.intacct.com/ia/xml/xmlgw.phtml` (a private attribute set in
`ApiBase.__init__`), signs in there and then follows the endpoint `getAPISession`
returns. The test changes exactly that starting URL, nothing else; sign-in, the XML it
builds, its parsing and its default field lists are the SDK's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sageintacctsdk import SageIntacctSDK
from sageintacctsdk.apis.api_base import ApiBase
from sageintacctsdk.apis.constants import dimensions_fields_mapping
from sageintacctsdk.exceptions import InvalidTokenError, WrongParamsError

from connector_pipeline import settings
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig, create_app
from connector_pipeline_tests.support import serve_asgi

SEEDED = 30


def top_level(fields: list[str]) -> set[str]:
    """Dotted fields (DISPLAYCONTACT.EMAIL1) come back nested under their group in the
    sandbox. UNCONFIRMED for the real `query`: whether it answers nested or with flat
    dotted element names (reference/intacct-api.md leaves the dotted names open; a
    third-party test input, invoiced's IntacctCustomerTransformerTest, shows flat ones)."""
    return {name.split(".", 1)[0] for name in fields}


@pytest.fixture
def gateway() -> Iterator[tuple[str, IntacctSandboxConfig]]:
    config = IntacctSandboxConfig(seed_vendors=SEEDED, seed_customers=5)
    with serve_asgi(create_app(config)) as server:
        yield server.url + settings.INTACCT_SANDBOX_PATH, config


def sdk_for(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch, **over: str
) -> SageIntacctSDK:
    url, config = gateway
    original = ApiBase.__init__

    def pointed(self: ApiBase, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        vars(self)["_ApiBase__api_url"] = url  # the name-mangled start URL

    monkeypatch.setattr(ApiBase, "__init__", pointed)
    credentials = {
        "sender_id": config.sender_id,
        "sender_password": config.sender_password,
        "user_id": config.user_id,
        "company_id": config.company_id,
        "user_password": config.user_password,
        **over,
    }
    return SageIntacctSDK(**credentials)


def test_get_all_reads_every_vendor_with_the_default_field_list(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    vendors = sdk_for(gateway, monkeypatch).vendors.get_all()
    assert len(vendors) == SEEDED
    assert set(vendors[0]) == top_level(dimensions_fields_mapping["VENDOR"])
    assert len({v["VENDORID"] for v in vendors}) == SEEDED


def test_customers_get_all_with_their_default_field_list(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = sdk_for(gateway, monkeypatch).customers.get_all()
    assert len(customers) == 5
    assert set(customers[0]) == top_level(dimensions_fields_mapping["CUSTOMER"])


def test_read_by_query_and_query_filters(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = sdk_for(gateway, monkeypatch)
    page = sdk.vendors.read_by_query()
    assert int(page["data"]["@totalcount"]) == SEEDED
    assert page["data"]["vendor"][0]["VENDORID"]
    one = sdk.vendors.get(field="VENDORID", value="V00003")
    assert [v["VENDORID"] for v in one["VENDOR"]] == ["V00003"]
    active = sdk.vendors.get_by_query(and_filter=[("equalto", "STATUS", "active")])
    inactive = sdk.vendors.count(field="STATUS", value="inactive")
    assert len(active) + inactive == SEEDED
    described = sdk.vendors.get_lookup()
    assert described["Type"]["@Name"] == "VENDOR"


def test_create_and_update_a_vendor(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = sdk_for(gateway, monkeypatch)
    created = sdk.vendors.post({"VENDORID": "SDK1", "NAME": "Made by the SDK"})
    assert created["status"] == "success"
    key = created["data"]["vendor"]["RECORDNO"]
    updated = sdk.vendors.update({"RECORDNO": key, "NAME": "Renamed by the SDK"})
    assert updated["status"] == "success"
    found = sdk.vendors.get(field="VENDORID", value="SDK1")["VENDOR"]
    assert [v["NAME"] for v in found] == ["Renamed by the SDK"]
    with pytest.raises(WrongParamsError):
        sdk.vendors.post({"VENDORID": "SDK1", "NAME": "Duplicate id"})


def test_wrong_user_password_is_an_authentication_failure(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidTokenError):
        sdk_for(gateway, monkeypatch, user_password="wrong")


def test_wrong_sender_password_is_a_control_failure(
    gateway: tuple[str, IntacctSandboxConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WrongParamsError) as failed:
        sdk_for(gateway, monkeypatch, sender_password="wrong")
    assert "XL03000006" in str(failed.value.response)
