"""Child processes for the multi-process ledger tests.

Each role waits for a "go" file so that all processes start their work together, writes
what it did as JSON to `--out`, and exits non-zero on any error (the traceback goes to
stderr, which the test inspects).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import click

from connector_pipeline.staging import InboxEvent, StagingStore
from connector_pipeline_tests.staging.factories import vendor_row

POLL_S = 0.05
WAIT_LIMIT_S = 120.0


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(POLL_S)


def _write(out: Path, result: object) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)


@click.group()
def main() -> None:
    """Roles played by child processes in the ledger tests."""


class _CountMigrations(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.migrations = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("ledger migrated"):
            self.migrations += 1


@main.command()
@click.option("--url", required=True)
@click.option("--go", "go", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def open_store(url: str, go: Path, out: Path) -> None:
    """Open the store on a (possibly fresh) database; report whether this process migrated."""
    counter = _CountMigrations()
    logger = logging.getLogger("connector_pipeline.staging.store")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    _wait_for(go)
    store = StagingStore.open(url)
    try:
        _write(out, {"migrations": counter.migrations, "revision": store.current_revision()})
    finally:
        store.dispose()


@main.command()
@click.option("--url", required=True)
@click.option("--go", "go", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--prefix", required=True)
@click.option("--count", type=int, required=True)
@click.option("--shared", type=int, required=True, help="How many ids both appenders send.")
def append(url: str, go: Path, out: Path, prefix: str, count: int, shared: int) -> None:
    """Append `count` own deliveries, interleaved with `shared` ones the other appender
    also sends (the retries Zendesk makes when an answer is lost)."""
    store = StagingStore.open(url)
    ids = [f"{prefix}-{i}" for i in range(count)]
    for i in range(shared):
        ids.insert((i * 7) % (len(ids) + 1), f"shared-{i}")
    _wait_for(go)
    new: dict[str, int] = {}
    duplicates: list[str] = []
    try:
        for n, invocation_id in enumerate(ids):
            body = json.dumps({"ticket": {"id": n, "status": "open"}}).encode()
            result = store.append_inbox(
                InboxEvent(
                    body=body,
                    headers={"x-zendesk-webhook-invocation-id": invocation_id},
                    invocation_id=invocation_id,
                    event_type="zen:event-type:ticket.status_changed",
                    ticket_id=n,
                )
            )
            if result.duplicate:
                duplicates.append(invocation_id)
            else:
                assert result.id is not None
                new[invocation_id] = result.id
        _write(out, {"new": new, "duplicates": duplicates})
    finally:
        store.dispose()


@main.command()
@click.option("--url", required=True)
@click.option("--go", "go", type=click.Path(path_type=Path), required=True)
@click.option("--done", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--batch", type=int, default=100)
def claim(url: str, go: Path, done: Path, out: Path, batch: int) -> None:
    """Claim and mark processed until the appenders are done and nothing is left."""
    store = StagingStore.open(url)
    claimed: list[list[object]] = []
    while_appending = 0
    _wait_for(go)
    deadline = time.monotonic() + WAIT_LIMIT_S
    try:
        while time.monotonic() < deadline:
            finished = done.exists()  # read before claiming: rows committed by then are seen
            rows = store.claim_inbox(batch)
            claimed.extend([r.id, r.invocation_id, r.attempts] for r in rows)
            if not finished:
                while_appending += len(rows)
            store.mark_inbox_processed([r.id for r in rows])
            if not rows:
                if finished:
                    break
                time.sleep(POLL_S)
        else:
            raise TimeoutError("claimer did not drain the inbox in time")
        _write(out, {"claimed": claimed, "while_appending": while_appending})
    finally:
        store.dispose()


@main.command()
@click.option("--url", required=True)
@click.option("--rows", type=int, required=True)
def crash_mid_transaction(url: str, rows: int) -> None:
    """Stage vendors and their watermark in one transaction, then die before it commits."""
    store = StagingStore.open(url)
    with store.transaction() as conn:
        store.upsert_vendors(
            [vendor_row(n) for n in range(1, rows + 1)],
            cursor=("intacct.vendors.watermark", "crashed"),
            conn=conn,
        )
        print("staged", flush=True)
        os._exit(17)  # no commit, no rollback, no cleanup: as if the process were killed


if __name__ == "__main__":
    main()
