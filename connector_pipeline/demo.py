"""`ml-connector demo` (what `make demo` runs): the whole system on this machine.

Both sandboxes seeded with related data, the webhook receiver, live ticket traffic that
Zendesk pushes to the receiver, and `dagster dev` with schedules and the inbox sensor on,
all on the embedded defaults (SQLite ledger under ML_CONNECTOR_HOME).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import httpx

from connector_pipeline import settings
from connector_pipeline.demo_runs import DagsterUI, cancel_unfinished_runs, launch_first_runs
from connector_pipeline.deployment import (
    ENV_DAGSTER_PG_URL,
    dagster_postgres_url,
    database_url,
    start_daemon,
    start_webserver,
    write_instance_config,
)
from connector_pipeline.sandbox import intacct as intacct_sandbox
from connector_pipeline.sandbox import zendesk as zendesk_sandbox
from connector_pipeline.sandbox.scenario import (
    LiveTraffic,
    run_sandboxes,
    seed_tickets,
    seed_vendors,
)
from connector_pipeline.servers import stop_process
from connector_pipeline.status import safe_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_WEBHOOK_SECRET = "demo-webhook-signing-secret"
CHILD_STOP_TIMEOUT_S = 15
HEALTH_TIMEOUT_S = 60
CHILD_CHECK_INTERVAL_S = 2.0
FIRST_RUNS_TIMEOUT_S = 300
TICKET_LOAD_DAYS = 30
DEMO_LEDGER_DB = "ml_connector_demo_ledger"
DEMO_DAGSTER_DB = "ml_connector_demo_dagster"


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"{url} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise click.ClickException(f"{url} did not become healthy")


def _first_runs(ui_url: str) -> None:
    """In the background: the demo's first vendor sync and ticket load, so the first screen
    of the UI shows them running and, soon, succeeded."""
    try:
        launch_first_runs(
            DagsterUI(ui_url),
            today=datetime.now(UTC).date(),
            ticket_days=TICKET_LOAD_DAYS,
            timeout_s=FIRST_RUNS_TIMEOUT_S,
            echo=click.echo,
        )
    except Exception as exc:  # the demo goes on; the runs can be launched from the UI
        click.echo(f"demo: could not launch the first runs: {exc}", err=True)


def _set_up_standing(intacct_url: str, bin_dir: Path, env: dict[str, str]) -> None:
    """Bills and payments for every vendor, and the organization fields standing is written
    to, created as a user would (`ml-connector setup zendesk`)."""
    httpx.post(
        f"{intacct_url}/_sandbox/ledger/seed", json={"party": "VENDOR", "per_party": 3}, timeout=60
    ).raise_for_status()
    subprocess.run(
        [str(bin_dir / "ml-connector"), "setup", "zendesk"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait for Ctrl-C (or SIGTERM); stop early, with an error, if a child dies."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(CHILD_CHECK_INTERVAL_S):
        for child in children:
            if child.poll() is not None:
                raise click.ClickException(f"{child.args!r} exited with code {child.returncode}")


@click.command("demo")
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port.")
@click.option(
    "--intacct-port", default=8101, show_default=True, type=int, help="Intacct sandbox port."
)
@click.option(
    "--zendesk-port", default=8102, show_default=True, type=int, help="Zendesk sandbox port."
)
@click.option(
    "--webhook-port", default=8103, show_default=True, type=int, help="Webhook receiver port."
)
@click.option(
    "--vendors", default=300, show_default=True, type=int, help="Intacct vendors to seed."
)
@click.option(
    "--tickets",
    default=800,
    show_default=True,
    type=int,
    help="Zendesk tickets to seed, spread over the last 30 days.",
)
@click.option(
    "--traffic-interval",
    default=20.0,
    show_default=True,
    type=float,
    help="Seconds between live ticket changes in the Zendesk sandbox (0: none).",
)
@click.option(
    "--db",
    type=click.Choice(["sqlite", "postgres"]),
    default="sqlite",
    show_default=True,
    help="sqlite: ledger and Dagster storage in files, under `dagster dev`. postgres: the "
    "production shape, both on Postgres, dagster-webserver and dagster-daemon as "
    "separate processes (`make demo DB=postgres`).",
)
@click.option(
    "--postgres-url",
    default="postgresql://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="With --db postgres: a server where the demo may create its databases "
    f"({DEMO_LEDGER_DB}, recreated at each start, and {DEMO_DAGSTER_DB}).",
)
def demo_command(
    port: int,
    intacct_port: int,
    zendesk_port: int,
    webhook_port: int,
    vendors: int,
    tickets: int,
    traffic_interval: float,
    db: str,
    postgres_url: str,
) -> None:
    """Run the whole connector locally against the sandboxes, with the Dagster UI."""
    # One line per sandbox request would drown what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    home = settings.ml_connector_home()
    home.mkdir(parents=True, exist_ok=True)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home / "dagster")
    postgres = db == "postgres"
    write_instance_config(dagster_home, postgres=postgres)
    dagster_env: dict[str, str] = {}
    # The sandboxes start empty each time, so the demo ledger starts empty too; Dagster's
    # storage (run history) is kept.
    if postgres:
        ledger_url = database_url(postgres_url, DEMO_LEDGER_DB, fresh=True)
        dagster_env[ENV_DAGSTER_PG_URL] = dagster_postgres_url(
            database_url(postgres_url, DEMO_DAGSTER_DB, fresh=False)
        )
        os.environ.update(dagster_env)  # for the instance this process opens
        ledger_text = safe_url(ledger_url)
    else:
        ledger = home / "demo-staging.db"
        for stale in home.glob("demo-staging.db*"):
            stale.unlink()
        ledger_url = f"sqlite:///{ledger}"
        ledger_text = str(ledger)
    # `ml-connector status` / `db quarantine` without arguments then read this ledger.
    (home / settings.STAGING_URL_FILENAME).write_text(ledger_url + "\n")
    _cancel_interrupted(dagster_home, "a previous demo")
    start_date = (datetime.now(UTC) - timedelta(days=35)).date().isoformat()

    zendesk_config = zendesk_sandbox.ZendeskSandboxConfig(
        webhook_url=f"http://127.0.0.1:{webhook_port}/webhooks/zendesk",
        webhook_secret=DEMO_WEBHOOK_SECRET,
        export_lag_s=5,
    )
    children: list[subprocess.Popen[bytes]] = []
    traffic: LiveTraffic | None = None
    with run_sandboxes(
        intacct_port=intacct_port,
        zendesk_port=zendesk_port,
        # Vendor edits reach Zendesk in seconds: the Intacct sandbox posts outbound webhooks
        # to the receiver, whose deliveries wake vendor_sync (docs/intacct-webhooks.md).
        intacct_config=intacct_sandbox.IntacctSandboxConfig(
            trigger_url=f"http://127.0.0.1:{webhook_port}{settings.INTACCT_WEBHOOK_PATH}"
        ),
        zendesk_config=zendesk_config,
    ) as sandboxes:
        try:
            click.echo(f"seeding {vendors} vendors and {tickets} tickets over 30 days ...")
            seed_vendors(
                sandboxes, vendors=vendors, preexisting_fraction=0.4, unlinked_organizations=3
            )
            seed_tickets(sandboxes, tickets=tickets, days=30)
            env = {
                **os.environ,
                **sandboxes.env,
                "DAGSTER_HOME": str(dagster_home),
                settings.ENV_ML_CONNECTOR_HOME: str(home),
                settings.ENV_STAGING_DATABASE_URL: ledger_url,
                settings.ENV_ZENDESK_WEBHOOK_SECRETS: DEMO_WEBHOOK_SECRET,
                settings.ENV_SCHEDULES_RUNNING: "1",
                settings.ENV_INBOX_SENSOR_INTERVAL_S: "15",
                settings.ENV_TICKETS_START_DATE: start_date,
                **dagster_env,
            }
            bin_dir = Path(sys.executable).parent
            _set_up_standing(sandboxes.intacct_url, bin_dir, env)
            children.append(
                subprocess.Popen(
                    [
                        str(bin_dir / "ml-connector"),
                        "webhook",
                        "serve",
                        "--port",
                        str(webhook_port),
                    ],
                    env=env,
                    start_new_session=True,
                )
            )
            _wait_healthy(f"http://127.0.0.1:{webhook_port}/healthz", children[-1])
            if traffic_interval > 0:
                traffic = LiveTraffic(
                    sandboxes.zendesk_url,
                    interval_s=traffic_interval,
                    intacct_url=sandboxes.intacct_url,
                )
                traffic.start()
            if postgres:
                # The production shape: webserver and daemon as processes of their own.
                children.append(start_webserver(env, port))
                children.append(start_daemon(env))
            else:
                children.append(
                    subprocess.Popen(
                        [
                            str(bin_dir / "dagster"),
                            "dev",
                            "-w",
                            str(REPO_ROOT / "workspace.yaml"),
                            "-h",
                            "127.0.0.1",
                            "-p",
                            str(port),
                        ],
                        env=env,
                        cwd=REPO_ROOT,
                        # Children run in process groups of their own: Ctrl-C reaches this
                        # command only, which stops dagster dev, and dagster dev its code
                        # servers. A code server that got the terminal's SIGINT itself
                        # could hang and outlive the demo.
                        start_new_session=True,
                    )
                )
            click.echo(
                "\n".join(
                    [
                        "",
                        f"Dagster UI        http://127.0.0.1:{port}",
                        f"Intacct sandbox   {sandboxes.intacct_url}/_sandbox/stats",
                        f"Zendesk sandbox   {sandboxes.zendesk_url}/_sandbox/stats",
                        f"Webhook receiver  http://127.0.0.1:{webhook_port}/healthz",
                        f"Ledger            {ledger_text}",
                        f"Dagster storage   {'Postgres' if postgres else dagster_home}",
                        "A vendor sync, then the 30-day ticket load, start as soon as the UI is",
                        "up; schedules and the webhook inbox sensor are on. Ctrl-C stops all.",
                        "",
                    ]
                )
            )
            threading.Thread(
                target=_first_runs, args=(f"http://127.0.0.1:{port}",), daemon=True
            ).start()
            _supervise(children)
        finally:
            if traffic is not None:
                traffic.stop()
            for child in reversed(children):
                stop_process(child, CHILD_STOP_TIMEOUT_S, group=True)
            _cancel_interrupted(dagster_home, "this demo")


def _cancel_interrupted(dagster_home: Path, whose: str) -> None:
    canceled = cancel_unfinished_runs(dagster_home)
    if canceled:
        click.echo(f"marked {len(canceled)} run(s) that {whose} left unfinished as canceled")
