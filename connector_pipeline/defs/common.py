"""What the assets share: retry policy, rate limits as Dagster retries, API call counting,
markdown previews."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.credentials import credential_failure
from connector_pipeline.intacct import IntacctError, IntacctRateLimited
from connector_pipeline.staging import StagingStore
from connector_pipeline.status import quarantine_metadata
from connector_pipeline.zendesk import ZendeskError, ZendeskRateLimited

# Failure metadata that marks a refused credential; the failure sensor
# (defs/credentials.py) reads it to pause automatic runs.
CREDENTIAL_FAILURE_KEY = "ml_connector/credential_failure"

API_RETRY_POLICY = dg.RetryPolicy(
    max_retries=settings.API_STEP_MAX_RETRIES,
    delay=settings.API_STEP_RETRY_DELAY_S,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


@contextmanager
def rate_limits_as_retries() -> Iterator[None]:
    """API failures as Dagster outcomes (decisions 6 and 12).

    - A refused credential or missing permission fails the step for good, with one line
      naming the variable to fix: `Failure(allow_retries=False)` skips the RetryPolicy, and
      run retries only cover crashed runs (`retry_on_asset_or_op_failure: false`).
    - A rate limit longer than the client is willing to wait becomes a Dagster retry after
      the wait the service asked for; one longer than `RETRY_AFTER_MAX_S` fails the step
      instead of parking it.
    """
    try:
        yield
    except (IntacctError, ZendeskError) as exc:
        refused = credential_failure(exc)
        if refused is not None:
            raise dg.Failure(
                description=refused.fix,
                metadata={CREDENTIAL_FAILURE_KEY: refused.system} if refused.pauses_runs else {},
                allow_retries=False,
            ) from None
        if not isinstance(exc, (ZendeskRateLimited, IntacctRateLimited)):
            raise
        wait = exc.retry_after or settings.API_STEP_RETRY_DELAY_S
        if wait > settings.RETRY_AFTER_MAX_S or not exc.retryable:
            raise dg.Failure(
                description=f"{exc} (a wait over {settings.RETRY_AFTER_MAX_S:g} s is not "
                "honoured; the next scheduled run tries again)",
                allow_retries=False,
            ) from exc
        raise dg.RetryRequested(
            max_retries=settings.RATE_LIMIT_MAX_RETRIES, seconds_to_wait=float(wait)
        ) from exc


class _CountsCalls(Protocol):
    @property
    def http_calls(self) -> int: ...


class CallCounter:
    """HTTP calls a client made during a block of work."""

    def __init__(self, client: _CountsCalls) -> None:
        self.client = client
        self.start = client.http_calls

    @property
    def calls(self) -> int:
        return self.client.http_calls - self.start


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], limit: int = settings.PREVIEW_ROWS
) -> str:
    """A markdown table of the first `limit` rows, with a count of the rest."""
    if not rows:
        return "_nothing to write_"

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 80 else text[:77] + "..."

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n_and {len(rows) - limit} more_")
    return "\n".join(lines)


class SyncRunConfig(dg.Config):
    """Run configuration shared by the write assets."""

    dry_run: bool = False
    """Compute and show what would be written, write nothing."""
    full_refresh: bool = False
    """Reconsider every staged record, not only what changed since the last run."""
    allow_mass_deletion: bool = False
    """With full_refresh: mark vendors deleted even when many vanished at once."""


class FlowResult(Protocol):
    """What every flow returns: its counts as plain metadata."""

    def metadata(self) -> dict[str, Any]: ...


def report(
    result: FlowResult,
    preview: Sequence[Mapping[str, Any]] | None = None,
    columns: Sequence[str] = (),
    *,
    quarantine: tuple[StagingStore, Sequence[str]] | None = None,
) -> dg.MaterializeResult:
    """A flow's result as the asset's materialization: its counts, and the preview of what
    was (or would be) written as a markdown table. With `quarantine` (the ledger and the
    asset's quarantine kinds): the entries open after the run, `quarantined`, and a table
    of them by reason, the numbers the `quarantine_size` check and the CLI show."""
    metadata: dict[str, Any] = dict(result.metadata())
    if preview is not None:
        metadata["preview"] = dg.MetadataValue.md(markdown_table(preview, columns))
    if quarantine is not None:
        store, kinds = quarantine
        summary = quarantine_metadata(store, kinds)
        metadata["quarantined"] = summary["quarantined"]
        metadata["quarantined_by_reason"] = dg.MetadataValue.md(
            str(summary["quarantined_by_reason"])
        )
    return dg.MaterializeResult(metadata=metadata)
