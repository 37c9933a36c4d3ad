"""`ml-connector sandbox`: both local sandboxes, seeded, with the variables that point
ml-connector at them."""

from __future__ import annotations

import shlex
import signal
import threading

import click

from connector_pipeline.sandbox import intacct as intacct_sandbox
from connector_pipeline.sandbox import zendesk as zendesk_sandbox
from connector_pipeline.sandbox.faults import DEFAULT_KINDS
from connector_pipeline.sandbox.scenario import run_sandboxes, seed_tickets, seed_vendors


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--intacct-port", default=8101, show_default=True, type=int)
@click.option("--zendesk-port", default=8102, show_default=True, type=int)
@click.option("--seed-vendors", "vendor_count", default=100, show_default=True, type=int)
@click.option(
    "--seed-tickets",
    "ticket_count",
    default=0,
    show_default=True,
    type=int,
    help="Tickets over the last 30 days, spread over the organizations Zendesk holds.",
)
@click.option(
    "--preexisting-organizations",
    default=0.0,
    show_default=True,
    type=float,
    help="Share of vendors that already have a Zendesk organization.",
)
@click.option("--latency-ms", default=0.0, show_default=True, type=float)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=float,
    help=f"Probability of an injected fault per request ({', '.join(DEFAULT_KINDS)}).",
)
@click.option("--webhook-url", default=None, help="Where the Zendesk sandbox delivers webhooks.")
@click.option(
    "--intacct-webhook-url",
    default=None,
    help="Where the Intacct sandbox delivers its outbound webhooks (vendor and customer "
    "changes), e.g. http://127.0.0.1:8103/webhooks/intacct.",
)
@click.option(
    "--plan-limit", default=700, show_default=True, type=click.Choice(["200", "400", "700", "2500"])
)
def sandbox_command(
    host: str,
    intacct_port: int,
    zendesk_port: int,
    vendor_count: int,
    ticket_count: int,
    preexisting_organizations: float,
    latency_ms: float,
    fault_rate: float,
    webhook_url: str | None,
    intacct_webhook_url: str | None,
    plan_limit: str,
) -> None:
    """Run the local Intacct gateway and Zendesk API until interrupted."""
    intacct_config = intacct_sandbox.IntacctSandboxConfig(
        latency_ms=latency_ms, fault_rate=fault_rate, trigger_url=intacct_webhook_url
    )
    zendesk_config = zendesk_sandbox.ZendeskSandboxConfig(
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        plan_limit_per_minute=int(plan_limit),
        webhook_url=webhook_url,
    )
    with run_sandboxes(
        host=host,
        intacct_port=intacct_port,
        zendesk_port=zendesk_port,
        intacct_config=intacct_config,
        zendesk_config=zendesk_config,
    ) as sandboxes:
        if vendor_count:
            seeded = seed_vendors(
                sandboxes, vendors=vendor_count, preexisting_fraction=preexisting_organizations
            )
            click.echo(f"# seeded: {seeded}", err=True)
        if ticket_count:
            click.echo(f"# seeded: {seed_tickets(sandboxes, tickets=ticket_count)}", err=True)
        click.echo(
            f"# Intacct sandbox: {sandboxes.intacct_url}  Zendesk sandbox: {sandboxes.zendesk_url}",
            err=True,
        )
        click.echo("# Point ml-connector at them:", err=True)
        for name, value in sorted(sandboxes.env.items()):
            click.echo(f"export {name}={shlex.quote(value)}")
        click.echo("# Ctrl-C stops both.", err=True)
        wait_for_signal()
