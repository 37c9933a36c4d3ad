"""Financial standing: Intacct bills and payments into the ledger, and from the ledger
into Zendesk organization fields."""

from datetime import UTC, date, datetime

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.common import API_RETRY_POLICY, rate_limits_as_retries, report
from connector_pipeline.defs.resources import (
    ConnectorResource,
    IntacctResource,
    StagingResource,
    ZendeskResource,
)
from connector_pipeline.defs.vendors import zendesk_organizations
from connector_pipeline.flows import standing


class StandingRunConfig(dg.Config):
    """Run configuration of the standing assets."""

    dry_run: bool = False
    """Compute and show what would be written, write nothing."""
    full_refresh: bool = False
    """Read every bill and payment again / write every organization's standing again."""
    as_of: str = ""
    """The day overdue is counted on (YYYY-MM-DD); empty for today (UTC)."""

    def today(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else datetime.now(UTC).date()


@dg.asset(
    group_name="standing",
    pool=settings.INTACCT_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"intacct"},
)
def intacct_standing(
    context: dg.AssetExecutionContext,
    config: StandingRunConfig,
    intacct: IntacctResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Intacct bills and payments (APBILL, APPYMT; ARINVOICE, ARPYMT for customers) changed
    since their watermarks, staged."""
    if not connector.mapping().standing.enabled:
        # Nothing is published, so nothing is read: no API call, no permission needed.
        context.log.info("standing is not enabled in the mapping file; nothing to read")
        return report(standing.StandingReadResult(dry_run=config.dry_run))
    flow = standing.StandingRead(
        intacct.client,
        staging.store,
        connector.objects(),
        standing.StandingOptions(config.dry_run, config.full_refresh),
        context.log,
    )
    with rate_limits_as_retries():
        result = flow.run()
    return report(result)


@dg.asset(
    group_name="standing",
    deps=[intacct_standing, zendesk_organizations],
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_standing(
    context: dg.AssetExecutionContext,
    config: StandingRunConfig,
    zendesk: ZendeskResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Each organization's financial standing (band, amounts, overdue) in its organization
    fields, written only where it changed."""
    mapping = connector.mapping()
    flow = standing.StandingPublish(
        zendesk.client,
        staging.store,
        mapping.organization,
        mapping.standing,
        connector.objects(),
        standing.StandingOptions(config.dry_run, config.full_refresh),
        config.today(),
        context.log,
    )
    with rate_limits_as_retries():
        result = flow.run()
    return report(result, result.preview, standing.PREVIEW_COLUMNS)
