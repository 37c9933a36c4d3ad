"""`ml-connector setup`: one-time set-up of what the connector writes into."""

from __future__ import annotations

from pathlib import Path

import click

from connector_pipeline import settings


@click.group("setup")
def setup_group() -> None:
    """Create what the connector needs in Zendesk or Intacct."""


@setup_group.command("zendesk")
@click.option("--dry-run", is_flag=True, help="Show what would be created, create nothing.")
@click.option(
    "--mapping-file",
    envvar=settings.ENV_MAPPING_FILE,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Mapping file (default: ML_CONNECTOR_MAPPING_FILE or the built-in mapping).",
)
def setup_zendesk(dry_run: bool, mapping_file: Path | None) -> None:
    """Create the organization fields the mapping's standing section names (idempotent)."""
    from connector_pipeline.flows.zendesk_setup import setup_organization_fields
    from connector_pipeline.sync.mapping import ConnectorMapping
    from connector_pipeline.zendesk import ZendeskClient

    path = mapping_file or settings.DEFAULT_MAPPING_FILE
    mapping = ConnectorMapping.from_yaml(path.read_text()).standing
    if not mapping.fields:
        click.echo("the mapping names no standing fields; nothing to set up")
        return
    with ZendeskClient.from_env() as zendesk:
        result = setup_organization_fields(zendesk, mapping, dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    for body in result.plan.create:
        click.echo(f"{verb}\t{body['key']}\t{body['type']}\t{body['title']}")
    for key in result.plan.present:
        click.echo(f"present\t{key}")
    for key, why in result.plan.unusable:
        click.echo(f"unusable\t{key}\t{why}")
    click.echo(
        f"{len(result.plan.create)} {verb}, {len(result.plan.present)} present, "
        f"{len(result.plan.unusable)} unusable"
    )
    if not result.ok:
        raise SystemExit(1)
