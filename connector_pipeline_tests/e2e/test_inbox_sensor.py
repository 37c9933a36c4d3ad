"""The webhook inbox sensor: the ledger says what is pending, so restarts, restores and a
move to Postgres never leave deliveries behind, and one run drains everything pending.
And the tags that say why a run was launched and what it wrote."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from connector_pipeline.defs.automation import (
    OLDEST_TAG,
    PENDING_TAG,
    TRIGGER_TAG,
    webhook_events_job,
    webhook_inbox_sensor,
)
from connector_pipeline.defs.resources import StagingResource
from connector_pipeline.staging import InboxEvent, StagingStore

RUN_KEY_TAG = "dagster/run_key"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """One Dagster instance for the whole test: it outlives the ledgers, as a deployment's
    Dagster storage outlives a ledger that is recreated, restored or moved."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def evaluate(instance: dg.DagsterInstance, url: str) -> dg.RunRequest | dg.SkipReason:
    staging = StagingResource(database_url=url)
    with dg.build_sensor_context(instance=instance, resources={"staging": staging}) as context:
        result = webhook_inbox_sensor(context)
    assert isinstance(result, dg.RunRequest | dg.SkipReason), result
    return result


def deliver(url: str, count: int, prefix: str) -> None:
    store = StagingStore.open(url)
    try:
        for n in range(count):
            store.append_inbox(
                InboxEvent(body=b"{}", headers={}, invocation_id=f"{prefix}-inv-{n}", event_id=None)
            )
    finally:
        store.dispose()


def record_run(
    instance: dg.DagsterInstance, request: dg.RunRequest, status: dg.DagsterRunStatus
) -> str:
    """What the sensor daemon does with a request: a run of webhook_events with its key."""
    run = instance.create_run_for_job(
        job_def=webhook_events_job_def(),
        tags={**request.tags, RUN_KEY_TAG: str(request.run_key)},
        status=status,
    )
    return run.run_id


def webhook_events_job_def() -> dg.JobDefinition:
    @dg.op
    def noop() -> None:
        pass

    @dg.job(name=webhook_events_job.name)
    def stand_in() -> None:
        noop()

    return stand_in


def drain(url: str) -> None:
    """What a webhook_events run does to the inbox when it succeeds."""
    store = StagingStore.open(url)
    try:
        rows = store.claim_inbox(10_000)
        store.mark_inbox_processed([r.id for r in rows])
    finally:
        store.dispose()


def keys_used(instance: dg.DagsterInstance) -> set[str]:
    return {r.tags[RUN_KEY_TAG] for r in instance.get_runs() if RUN_KEY_TAG in r.tags}


def drain_with_a_run(instance: dg.DagsterInstance, url: str) -> dg.RunRequest:
    request = evaluate(instance, url)
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key not in keys_used(instance)
    record_run(instance, request, dg.DagsterRunStatus.SUCCESS)
    drain(url)
    assert isinstance(evaluate(instance, url), dg.SkipReason)
    return request


def test_one_run_drains_everything_pending_and_its_tags_say_why(
    instance: dg.DagsterInstance, ledger_url: str
) -> None:
    skip = evaluate(instance, ledger_url)
    assert isinstance(skip, dg.SkipReason)
    assert "nothing unprocessed" in str(skip.skip_message)

    deliver(ledger_url, 3, "a")
    request = evaluate(instance, ledger_url)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[TRIGGER_TAG] == "webhook"
    assert request.tags[PENDING_TAG] == "3"
    assert request.tags[OLDEST_TAG]

    # While that run drains, new deliveries wait for it to finish: no second run.
    running = record_run(instance, request, dg.DagsterRunStatus.STARTED)
    deliver(ledger_url, 2, "b")
    waiting = evaluate(instance, ledger_url)
    assert isinstance(waiting, dg.SkipReason)
    assert "5 deliveries pending" in str(waiting.skip_message)
    assert running in str(waiting.skip_message)


def test_a_failed_drain_is_retried_with_a_new_key(
    instance: dg.DagsterInstance, sqlite_url: str
) -> None:
    deliver(sqlite_url, 2, "a")
    first = evaluate(instance, sqlite_url)
    assert isinstance(first, dg.RunRequest)
    record_run(instance, first, dg.DagsterRunStatus.FAILURE)
    store = StagingStore.open(sqlite_url)
    try:
        rows = store.claim_inbox(10)
        # Under a live claim, a new drain would get nothing: wait for the claim.
        claimed = evaluate(instance, sqlite_url)
        assert isinstance(claimed, dg.SkipReason)
        assert "claimed by a drain" in str(claimed.skip_message)
        store.release_inbox(rows, "Intacct unavailable")
    finally:
        store.dispose()
    retry = evaluate(instance, sqlite_url)
    assert isinstance(retry, dg.RunRequest)
    assert retry.run_key != first.run_key


def test_a_fresh_ledger_after_a_restart_is_drained(
    instance: dg.DagsterInstance, ledger_url: str, tmp_path: Path
) -> None:
    deliver(ledger_url, 52, "old")
    drain_with_a_run(instance, ledger_url)

    # The ledger is recreated (the demo does so at each start); its ids begin at 1 again.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    deliver(fresh, 2, "new")
    request = evaluate(instance, fresh)
    assert isinstance(request, dg.RunRequest), request
    assert request.tags[PENDING_TAG] == "2"
    assert request.run_key not in keys_used(instance)


def test_an_older_ledger_restored_from_a_backup_is_drained(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    path = tmp_path / "staging.db"
    url = f"sqlite:///{path}"
    deliver(url, 3, "a")
    StagingStore.open(url).dispose()
    backup = tmp_path / "backup.db"
    shutil.copy(path, backup)  # a backup taken while 3 deliveries were pending

    drain_with_a_run(instance, url)
    deliver(url, 4, "b")
    drain_with_a_run(instance, url)

    # Restore the backup: its 3 deliveries are pending again, in exactly the state the
    # first run was requested for, and must be drained again all the same.
    path.unlink()
    shutil.copy(backup, path)
    request = evaluate(instance, url)
    assert isinstance(request, dg.RunRequest), request
    assert request.tags[PENDING_TAG] == "3"
    assert request.run_key not in keys_used(instance)


@pytest.mark.postgres
def test_a_move_from_sqlite_to_postgres_is_drained(
    instance: dg.DagsterInstance, sqlite_url: str, postgres_url: str
) -> None:
    deliver(sqlite_url, 60, "sqlite")
    drain_with_a_run(instance, sqlite_url)

    deliver(postgres_url, 2, "postgres")
    request = evaluate(instance, postgres_url)
    assert isinstance(request, dg.RunRequest), request
    assert request.tags[PENDING_TAG] == "2"
    assert request.run_key not in keys_used(instance)
    record_run(instance, request, dg.DagsterRunStatus.SUCCESS)
    drain(postgres_url)
    assert isinstance(evaluate(instance, postgres_url), dg.SkipReason)


def test_a_successful_run_is_tagged_with_what_it_wrote(instance: dg.DagsterInstance) -> None:
    from connector_pipeline.defs.automation import (
        FAILED_TAG,
        OUTCOME_TAG,
        WRITTEN_TAG,
        tag_runs_with_what_they_wrote,
    )

    @dg.asset
    def organizations() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"created": 2, "updated": 3, "failed": 0})

    @dg.asset
    def records() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"created": 0, "updated": 1, "failed": 1})

    @dg.asset
    def idle() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"created": 0, "updated": 0, "unchanged": 7})

    def tags_after(assets: list[dg.AssetsDefinition]) -> dict[str, str]:
        result = dg.materialize(assets, instance=instance)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        context = dg.build_run_status_sensor_context(
            sensor_name="tag_runs_with_what_they_wrote",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=next(
                e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS"
            ),
        )
        tag_runs_with_what_they_wrote(context)
        tagged = instance.get_run_by_id(result.run_id)
        assert tagged is not None
        return {k: v for k, v in tagged.tags.items() if k.startswith("ml-connector/")}

    assert tags_after([organizations, records]) == {
        OUTCOME_TAG: "failed-writes",
        WRITTEN_TAG: "6",
        FAILED_TAG: "1",
    }
    assert tags_after([organizations]) == {OUTCOME_TAG: "wrote", WRITTEN_TAG: "5", FAILED_TAG: "0"}
    assert tags_after([idle]) == {OUTCOME_TAG: "no-change", WRITTEN_TAG: "0", FAILED_TAG: "0"}
