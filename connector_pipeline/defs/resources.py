"""Dagster resources: thin `ConfigurableResource` wrappers that build the lower layers in
`setup_for_execution`. Secrets reach them through `dg.EnvVar` (see `secret_env`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from connector_pipeline import settings
from connector_pipeline.credentials import missing_configuration
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.staging import StagingStore
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.vendors import parse_source_objects
from connector_pipeline.zendesk import ZendeskClient
from connector_pipeline.zendesk.config import ZendeskConfigError, account_root


def secret_env(name: str, default: str = "") -> Any:
    """`dg.EnvVar(name)` when the variable is set, so its value is resolved at launch and
    never shown in the UI; the default otherwise (for optional settings)."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _require(values: Mapping[str, str]) -> None:
    """Fail the run at resource setup, before any request, with one line naming every
    variable still to set (rather than a Dagster trace per variable)."""
    missing = missing_configuration(values)
    if missing:
        raise dg.Failure(
            description=f"Missing configuration: set {', '.join(missing)} in the environment "
            "of the Dagster code location (README, Configuration)",
            allow_retries=False,
        )


class StagingResource(dg.ConfigurableResource):
    """The ledger. `database_url` empty means `STAGING_DATABASE_URL` or the SQLite default."""

    database_url: str = ""

    _store: StagingStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = StagingStore.open(self.database_url or settings.staging_database_url())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    @property
    def store(self) -> StagingStore:
        if self._store is None:  # sensors use the resource without an execution context
            self._store = StagingStore.open(self.database_url or settings.staging_database_url())
        return self._store


class IntacctResource(dg.ConfigurableResource):
    """Sage Intacct XML gateway: one client (and one API session) per run process. Empty
    credentials fail setup with the list of variables to set."""

    sender_id: str = ""
    sender_password: str = ""
    company_id: str = ""
    user_id: str = ""
    user_password: str = ""
    entity_id: str = ""
    endpoint_url: str = settings.DEFAULT_INTACCT_ENDPOINT_URL
    allow_custom_endpoint: str = "0"

    _client: IntacctClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        _require(
            {
                settings.ENV_INTACCT_SENDER_ID: self.sender_id,
                settings.ENV_INTACCT_SENDER_PASSWORD: self.sender_password,
                settings.ENV_INTACCT_COMPANY_ID: self.company_id,
                settings.ENV_INTACCT_USER_ID: self.user_id,
                settings.ENV_INTACCT_USER_PASSWORD: self.user_password,
            }
        )
        try:
            endpoint = self.endpoint_url or settings.DEFAULT_INTACCT_ENDPOINT_URL
            self._client = IntacctClient(
                sender_id=self.sender_id,
                sender_password=self.sender_password,
                company_id=self.company_id,
                user_id=self.user_id,
                user_password=self.user_password,
                entity_id=self.entity_id or None,
                endpoint_url=endpoint,
                allow_custom_endpoint=_truthy(self.allow_custom_endpoint),
            )
        except ValueError as exc:
            raise dg.Failure(
                description=f"{settings.ENV_INTACCT_ENDPOINT_URL}: {exc}", allow_retries=False
            ) from None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> IntacctClient:
        if self._client is None:
            raise dg.DagsterInvariantViolationError("IntacctResource used outside a run")
        return self._client


class ZendeskResource(dg.ConfigurableResource):
    """Zendesk Support API: `subdomain` for the real service, `base_url` for the sandbox;
    an API token (with `email`) or an OAuth token."""

    subdomain: str = ""
    base_url: str = ""
    # "1" lets base_url be plain http (the sandbox); otherwise it must be https.
    allow_custom_base_url: str = "0"
    email: str = ""
    api_token: str = ""
    oauth_token: str = ""
    # 10 requests per minute on incremental exports; 30 with the High Volume add-on.
    incremental_limit_per_minute: int = settings.ZENDESK_INCREMENTAL_LIMIT_PER_MINUTE
    rate_window_s: float = settings.ZENDESK_RATE_WINDOW_S

    _client: ZendeskClient | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        _require(
            {
                settings.ENV_ZENDESK_SUBDOMAIN: self.subdomain,
                settings.ENV_ZENDESK_BASE_URL: self.base_url,
                settings.ENV_ZENDESK_EMAIL: self.email,
                settings.ENV_ZENDESK_API_TOKEN: self.api_token,
                settings.ENV_ZENDESK_OAUTH_TOKEN: self.oauth_token,
            }
        )
        try:
            root = account_root(
                self.base_url or None,
                self.subdomain or None,
                allow_custom=_truthy(self.allow_custom_base_url),
            )
        except ZendeskConfigError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        self._client = ZendeskClient(
            base_url=root,
            email=self.email or None,
            api_token=self.api_token or None,
            oauth_token=self.oauth_token or None,
            incremental_limit_per_minute=self.incremental_limit_per_minute,
            incremental_window_s=self.rate_window_s,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> ZendeskClient:
        if self._client is None:
            raise dg.DagsterInvariantViolationError("ZendeskResource used outside a run")
        return self._client


class ConnectorResource(dg.ConfigurableResource):
    """What moves where: the mapping file and the Intacct objects that become organizations."""

    mapping_file: str = ""
    source_objects: str = settings.DEFAULT_SOURCE_OBJECTS

    def mapping(self) -> ConnectorMapping:
        path = Path(self.mapping_file) if self.mapping_file else settings.DEFAULT_MAPPING_FILE
        return ConnectorMapping.from_yaml(path.read_text())

    def objects(self) -> tuple[str, ...]:
        return parse_source_objects(self.source_objects)


Setting = Callable[[str, str | None], Any]


def _resources(setting: Setting, **zendesk_options: Any) -> dict[str, Any]:
    """The connector's resources; `setting(name, default)` supplies each variable. None is
    required here: a missing variable would otherwise fail the launch with a Dagster trace
    per variable; the resources' setup lists every missing one in one line instead."""
    return {
        "staging": StagingResource(database_url=setting(settings.ENV_STAGING_DATABASE_URL, "")),
        "intacct": IntacctResource(
            sender_id=setting(settings.ENV_INTACCT_SENDER_ID, ""),
            sender_password=setting(settings.ENV_INTACCT_SENDER_PASSWORD, ""),
            company_id=setting(settings.ENV_INTACCT_COMPANY_ID, ""),
            user_id=setting(settings.ENV_INTACCT_USER_ID, ""),
            user_password=setting(settings.ENV_INTACCT_USER_PASSWORD, ""),
            entity_id=setting(settings.ENV_INTACCT_ENTITY_ID, ""),
            endpoint_url=setting(
                settings.ENV_INTACCT_ENDPOINT_URL, settings.DEFAULT_INTACCT_ENDPOINT_URL
            ),
            allow_custom_endpoint=setting(settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT, "0"),
        ),
        "zendesk": ZendeskResource(
            subdomain=setting(settings.ENV_ZENDESK_SUBDOMAIN, ""),
            base_url=setting(settings.ENV_ZENDESK_BASE_URL, ""),
            allow_custom_base_url=setting(settings.ENV_ZENDESK_ALLOW_CUSTOM_BASE_URL, "0"),
            email=setting(settings.ENV_ZENDESK_EMAIL, ""),
            api_token=setting(settings.ENV_ZENDESK_API_TOKEN, ""),
            oauth_token=setting(settings.ENV_ZENDESK_OAUTH_TOKEN, ""),
            **zendesk_options,
        ),
        "connector": ConnectorResource(
            mapping_file=setting(settings.ENV_MAPPING_FILE, ""),
            source_objects=setting(
                settings.ENV_INTACCT_SOURCE_OBJECTS, settings.DEFAULT_SOURCE_OBJECTS
            ),
        ),
    }


def resources_from_env() -> dict[str, Any]:
    """The resources of the code location. Every value comes from the environment at
    launch (`dg.EnvVar`), so secrets never appear in the UI or in run config."""

    def setting(name: str, default: str | None) -> Any:
        return dg.EnvVar(name) if default is None else secret_env(name, default)

    return _resources(setting)


def resources_for(environ: Mapping[str, str], **zendesk_options: Any) -> dict[str, Any]:
    """The same resources with the values of `environ` taken now: for in-process runs in
    tests, benchmarks and scripts (e.g. against `ml-connector sandbox`)."""

    def setting(name: str, default: str | None) -> Any:
        return environ[name] if default is None else environ.get(name, default)

    return _resources(setting, **zendesk_options)
