"""Configuration is resolved at launch: the code location binds `dg.EnvVar`s (never a value
read while loading), and `resources_for(environ)` takes every field from `environ`."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from connector_pipeline import settings
from connector_pipeline.defs.resources import resources_for, resources_from_env

# Every variable a resource field is bound to, with the field it fills.
FIELDS = {
    settings.ENV_STAGING_DATABASE_URL: ("staging", "database_url"),
    settings.ENV_INTACCT_SENDER_ID: ("intacct", "sender_id"),
    settings.ENV_INTACCT_SENDER_PASSWORD: ("intacct", "sender_password"),
    settings.ENV_INTACCT_COMPANY_ID: ("intacct", "company_id"),
    settings.ENV_INTACCT_USER_ID: ("intacct", "user_id"),
    settings.ENV_INTACCT_USER_PASSWORD: ("intacct", "user_password"),
    settings.ENV_INTACCT_ENTITY_ID: ("intacct", "entity_id"),
    settings.ENV_INTACCT_ENDPOINT_URL: ("intacct", "endpoint_url"),
    settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT: ("intacct", "allow_custom_endpoint"),
    settings.ENV_ZENDESK_SUBDOMAIN: ("zendesk", "subdomain"),
    settings.ENV_ZENDESK_BASE_URL: ("zendesk", "base_url"),
    settings.ENV_ZENDESK_EMAIL: ("zendesk", "email"),
    settings.ENV_ZENDESK_API_TOKEN: ("zendesk", "api_token"),
    settings.ENV_ZENDESK_OAUTH_TOKEN: ("zendesk", "oauth_token"),
    settings.ENV_MAPPING_FILE: ("connector", "mapping_file"),
    settings.ENV_INTACCT_SOURCE_OBJECTS: ("connector", "source_objects"),
}


def _field(resources: dict[str, Any], where: tuple[str, str]) -> Any:
    resource, name = where
    return getattr(resources[resource], name)


def test_resources_for_takes_every_field_from_the_given_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {name: f"value-of-{name}" for name in FIELDS}
    for name in FIELDS:  # the process's own environment must not count
        monkeypatch.setenv(name, "from-the-process")
    resources = resources_for(environ)
    assert {name: _field(resources, where) for name, where in FIELDS.items()} == environ


def test_the_code_location_binds_env_vars_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FIELDS:
        monkeypatch.setenv(name, "a-secret-value")
    resources = resources_from_env()
    for name, where in FIELDS.items():
        assert _field(resources, where) == dg.EnvVar(name), name
