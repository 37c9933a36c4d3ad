"""`ml-connector check`: does this configuration fit the real systems? Reads only.

One module per system (intacct, zendesk, ledger, instance), each returning rows; this
module runs them in order and never lets one system's failure hide another's rows.
Dagster-free except `instance`, which validates dagster.yaml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector_pipeline import settings
from connector_pipeline.check.deliveries import check_deliveries
from connector_pipeline.check.instance import check_instance
from connector_pipeline.check.intacct import check_intacct
from connector_pipeline.check.ledger import check_ledger
from connector_pipeline.check.report import scrub
from connector_pipeline.check.rows import CheckRow, failed, passed, skipped
from connector_pipeline.check.zendesk import check_zendesk
from connector_pipeline.credentials import (
    CREDENTIAL_VARIABLES,
    INTACCT,
    ZENDESK,
    missing_configuration,
)
from connector_pipeline.sync.mapping import ConnectorMapping
from connector_pipeline.sync.standing import standing_objects
from connector_pipeline.sync.vendors import parse_source_objects

__all__ = ["CheckRow", "run_checks"]


def _missing(system: str, environ: Mapping[str, str]) -> list[str]:
    return missing_configuration({n: environ.get(n, "") for n in CREDENTIAL_VARIABLES[system]})


def _ledger_url(environ: Mapping[str, str]) -> str:
    url = environ.get(settings.ENV_STAGING_DATABASE_URL)
    if url:
        return url
    home = Path(environ.get(settings.ENV_ML_CONNECTOR_HOME, settings.DEFAULT_ML_CONNECTOR_HOME))
    return f"sqlite:///{home.resolve() / settings.STAGING_SQLITE_FILENAME}"


def run_checks(
    environ: Mapping[str, str] = os.environ,
    *,
    receiver_url: str | None = None,
    intacct_options: Mapping[str, Any] | None = None,
    zendesk_options: Mapping[str, Any] | None = None,
) -> list[CheckRow]:
    """Every check, in the order a user fixes things; the rows are already scrubbed."""
    rows: list[CheckRow] = []
    missing = {system: _missing(system, environ) for system in (INTACCT, ZENDESK)}
    everything = missing[INTACCT] + missing[ZENDESK]
    if everything:
        rows.append(
            failed(
                "configuration",
                "required variables",
                f"missing: {', '.join(everything)}",
                "set them in the environment (README, Configuration)",
            )
        )
    else:
        rows.append(passed("configuration", "required variables", "all set"))
    mapping_file = Path(environ.get(settings.ENV_MAPPING_FILE) or settings.DEFAULT_MAPPING_FILE)
    try:
        mapping = ConnectorMapping.from_yaml(mapping_file.read_text())
        objects = parse_source_objects(
            environ.get(settings.ENV_INTACCT_SOURCE_OBJECTS, settings.DEFAULT_SOURCE_OBJECTS)
        )
    except (OSError, ValueError) as exc:
        rows.append(
            failed(
                "configuration",
                "mapping file",
                f"{mapping_file}: {exc}",
                f"fix the file or {settings.ENV_MAPPING_FILE} "
                f"(and {settings.ENV_INTACCT_SOURCE_OBJECTS})",
            )
        )
        mapping = None
    else:
        rows.append(passed("configuration", "mapping file", str(mapping_file)))
    if missing[INTACCT] or mapping is None:
        rows.append(skipped(INTACCT, "all checks", "needs the configuration above"))
    else:
        # Standing reads bills and payments too: the user needs read permission on them.
        readable = [*objects, *(standing_objects(objects) if mapping.standing.enabled else ())]
        rows += check_intacct(environ, mapping.ticket_record, readable, **(intacct_options or {}))
    if missing[ZENDESK] or mapping is None:
        rows.append(skipped(ZENDESK, "all checks", "needs the configuration above"))
    else:
        rows += check_zendesk(
            environ,
            mapping.organization,
            receiver_url=receiver_url,
            standing=mapping.standing,
            **(zendesk_options or {}),
        )
    rows += check_ledger(_ledger_url(environ))
    rows += check_deliveries(environ, _ledger_url(environ))
    rows += check_instance(environ)
    return scrub(rows, environ)
