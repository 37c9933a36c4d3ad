"""Intacct vendors into the ledger, and from the ledger into Zendesk organizations."""

import dagster as dg

from connector_pipeline import settings
from connector_pipeline.defs.common import (
    API_RETRY_POLICY,
    SyncRunConfig,
    rate_limits_as_retries,
    report,
)
from connector_pipeline.defs.resources import (
    ConnectorResource,
    IntacctResource,
    StagingResource,
    ZendeskResource,
)
from connector_pipeline.flows import organizations, vendors
from connector_pipeline.flows.organizations import QUARANTINE_ORGANIZATION
from connector_pipeline.flows.vendors import QUARANTINE_SOURCE, watermark_cursor

__all__ = [
    "QUARANTINE_ORGANIZATION",
    "QUARANTINE_SOURCE",
    "intacct_vendors",
    "watermark_cursor",
    "zendesk_organizations",
]


@dg.asset(
    group_name="vendors",
    pool=settings.INTACCT_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"intacct"},
)
def intacct_vendors(
    context: dg.AssetExecutionContext,
    config: SyncRunConfig,
    intacct: IntacctResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Intacct vendors (and customers, when configured) changed since the watermark, staged.
    A complete read (the first run, or full_refresh) also marks those gone from Intacct."""
    flow = vendors.VendorRead(
        intacct.client,
        staging.store,
        connector.objects(),
        vendors.VendorReadOptions(config.dry_run, config.full_refresh, config.allow_mass_deletion),
        context.log,
    )
    with rate_limits_as_retries():
        result = flow.run()
    # The preview of a read is only worth its space when nothing was staged.
    preview = result.preview if result.dry_run else None
    return report(result, preview, vendors.PREVIEW_COLUMNS)


@dg.asset(
    group_name="vendors",
    deps=[intacct_vendors],
    pool=settings.ZENDESK_POOL,
    retry_policy=API_RETRY_POLICY,
    kinds={"zendesk"},
)
def zendesk_organizations(
    context: dg.AssetExecutionContext,
    config: SyncRunConfig,
    zendesk: ZendeskResource,
    staging: StagingResource,
    connector: ConnectorResource,
) -> dg.MaterializeResult:
    """Zendesk organizations for the staged vendors, matched by external id."""
    flow = organizations.OrganizationSync(
        zendesk.client,
        staging.store,
        connector.mapping().organization,
        connector.objects(),
        organizations.OrganizationSyncOptions(config.dry_run, config.full_refresh),
        context.log,
    )
    with rate_limits_as_retries():
        result = flow.run()
    return report(result, result.preview, organizations.PREVIEW_COLUMNS)
