"""One chaos session on one ledger: seed both sandboxes, start the webhook receiver, run
three lanes of Dagster runs at once the way the daemon runs them (the inbox sensor's
`webhook_events`, the scheduled `vendor_sync` and `ticket_poll`), with faults, session
invalidations, duplicate / forged / stale webhooks, live traffic and SIGKILLs inside
writes; then a quiet pass and the verifier.

Everything is bounded: the chaos phase by `max_s`, every run by `run_timeout_s`, every
child process stopped (terminate, bounded wait, kill of its process group) on the way out.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.chaos.runs import DagsterRuns, RunOutcome
from bench.chaos.traffic import SessionInvalidator, Traffic, WebhookForger
from bench.chaos.verify import Truth, Verdict, inbox_rows, verify
from connector_pipeline import settings
from connector_pipeline.sandbox.faults import HTTP_FAULTS
from connector_pipeline.sandbox.intacct import DEFAULT_INTACCT_FAULTS, IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import (
    RunningSandboxes,
    run_sandboxes,
    seed_tickets,
    seed_vendors,
)
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig
from connector_pipeline.servers import stop_process
from connector_pipeline.staging import StagingStore

TICKET_OBJECT = settings.INTACCT_TICKET_OBJECT
WEBHOOK_SECRET = "chaos-webhook-signing-secret"
# Every fault the Zendesk sandbox can produce: the transport faults sandbox/faults.py
# carries out itself and the protocol faults of sandbox/zendesk_gate.py. "forbidden" and
# "unauthorized" are authentication failures, which the connector never retries (DESIGN.md
# decision 12): under chaos they fail a run, and the lane runs again.
ZENDESK_FAULTS = (
    *sorted(HTTP_FAULTS),
    "html",
    "reset",
    "slow",
    "rate_limit_json",
    "rate_limit_plain",
    "rate_limit_no_retry_after",
    "rate_limit_edge",
    "rate_limit_update",
    "incremental_rate_limit",
    "conflict",
    "unavailable",
    "forbidden",
    "unauthorized",
)
INTACCT_FAULTS = tuple(dict.fromkeys((*DEFAULT_INTACCT_FAULTS, "slow")))
HEALTH_TIMEOUT_S = 60
DRAIN_TIMEOUT_S = 120
SANDBOX_POLL_S = 0.05
WRITE_JOBS = {
    "intacct": {"ticket_poll", "webhook_events"},  # intacct_ticket_records
    "zendesk": {"vendor_sync"},  # zendesk_organizations
}


@dataclass
class ChaosConfig:
    vendors: int = 300
    preexisting_fraction: float = 0.3
    unlinked_organizations: int = 3
    tickets: int = 1500
    days: int = 20
    fault_rate: float = 0.10
    slow_ms: float = 400.0
    intacct_latency_ms: float = 40.0
    zendesk_latency_ms: float = 20.0
    kills: int = 20
    min_s: float = 240.0  # the chaos phase lasts at least this long ...
    max_s: float = 600.0  # ... and at most this long, kills done or not
    session_invalidate_s: float = 30.0
    traffic_interval_s: float = 0.5
    webhook_abuse_interval_s: float = 2.0
    lane_pause_s: float = 1.0
    run_timeout_s: float = 240.0
    quiet_run_timeout_s: float = 300.0
    seed: int = 20261126


@dataclass
class ChaosResult:
    ledger: str
    config: dict[str, Any]
    seconds: dict[str, float]
    kills: int
    kills_by_job: dict[str, int]
    runs: dict[str, Any]
    quiet_pass: list[dict[str, Any]]
    reconciliation_needed: bool
    faults_injected: dict[str, dict[str, int]]
    intacct_requests: dict[str, Any]
    zendesk_requests: dict[str, Any]
    sessions: dict[str, int]
    traffic: dict[str, int]
    webhooks: dict[str, int]
    write_amplification: dict[str, Any]
    verdict: dict[str, Any]
    failed_run_tails: list[str] = field(default_factory=list)
    damage_check: dict[str, Any] | None = None
    # What kept the session from doing all it promised (a lane that broke, fewer kills
    # than asked, a quiet-pass run that failed): the session fails with these too.
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.verdict["findings"] and not self.problems


def _sandbox_configs(config: ChaosConfig, webhook_url: str) -> tuple[Any, Any]:
    intacct = IntacctSandboxConfig(
        ticket_object=TICKET_OBJECT,
        latency_ms=config.intacct_latency_ms,
        fault_rate=config.fault_rate,
        fault_kinds=INTACCT_FAULTS,
        slow_ms=config.slow_ms,
        fault_seed=config.seed,
    )
    # Seconds-long rate windows and quick jobs, as the end-to-end tests use: the limits
    # keep their shape, the session does not wait out real minutes.
    zendesk = ZendeskSandboxConfig(
        rate_window_s=2.0,
        job_delay_s=0.05,
        export_lag_s=0.0,
        plan_limit_per_minute=2500,
        latency_ms=config.zendesk_latency_ms,
        fault_rate=config.fault_rate,
        fault_kinds=ZENDESK_FAULTS,
        seed=config.seed,
        webhook_url=webhook_url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_retry_base_s=0.5,
    )
    return intacct, zendesk


@contextmanager
def webhook_receiver(env: dict[str, str], port: int, logs: Path) -> Iterator[str]:
    """`ml-connector webhook serve` as its own process group; yields the delivery URL."""
    log_file = (logs / "receiver.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ml-connector"),
            "webhook",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"webhook receiver exited with code {proc.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("webhook receiver did not become healthy")
            time.sleep(0.2)
        yield f"{base}{settings.WEBHOOK_PATH}"
    finally:
        stop_process(proc, 15, group=True)
        log_file.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    def __init__(self, ledger_url: str, ledger_name: str, config: ChaosConfig, work: Path) -> None:
        self.ledger_url = ledger_url
        self.ledger_name = ledger_name
        self.config = config
        self.work = work
        self.rng = random.Random(config.seed)
        self.stop_chaos = threading.Event()
        self.kills_by_job: dict[str, int] = {}
        self.lane_errors: list[str] = []

    # ---- sandbox helpers

    def _get(self, url: str, path: str) -> Any:
        return httpx.get(f"{url}{path}", timeout=60).raise_for_status().json()

    def _post(self, url: str, path: str, body: dict[str, Any]) -> Any:
        return httpx.post(f"{url}{path}", json=body, timeout=60).raise_for_status().json()

    def _fault_script(self, kinds: tuple[str, ...]) -> list[str]:
        """Every kind once, in random order, each followed by as many good requests as the
        fault rate implies: a session of a few hundred requests meets every kind the sandbox
        supports, not only the ones chance picks. Random faults at the rate follow."""
        if self.config.fault_rate <= 0:
            return []
        gap = max(0, round(1 / self.config.fault_rate) - 1)
        order = self.rng.sample(list(kinds), len(kinds))
        return [step for kind in order for step in (kind, *["ok"] * gap)]

    # ---- lanes

    def _lane(self, name: str, next_run: Callable[[], tuple[str, dict[str, str]] | None]) -> None:
        """Run, again and again until the chaos phase ends; a killed run runs again."""
        try:
            while not self.stop_chaos.is_set():
                job = next_run()
                if job is None:
                    self.stop_chaos.wait(self.config.lane_pause_s)
                    continue
                self.runs.execute(job[0], tags=job[1], timeout_s=self.config.run_timeout_s)
                self.stop_chaos.wait(self.config.lane_pause_s)
        except Exception as exc:  # a broken lane must end the session, not hang it
            self.lane_errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self.stop_chaos.set()

    def _ticket_poll_runs(self) -> Callable[[], tuple[str, dict[str, str]] | None]:
        today = datetime.now(UTC).date()
        backfill = {
            "dagster/asset_partition_range_start": (
                today - timedelta(days=self.config.days + 1)
            ).isoformat(),
            "dagster/asset_partition_range_end": today.isoformat(),
        }
        state = {"backfilled": False}

        def next_run() -> tuple[str, dict[str, str]]:
            # The first run loads the seeded history (a backfill, one run); every later
            # one is the live poll the schedule asks for.
            if not state["backfilled"]:
                done = [o for o in self.runs.outcomes if o.job == "ticket_poll"]
                if any(o.status == "success" for o in done):
                    state["backfilled"] = True
                else:
                    return "ticket_poll", backfill
            key = datetime.now(UTC).date().isoformat()
            return "ticket_poll", {"dagster/partition": key}

        return next_run

    def _sensor_runs(self) -> Callable[[], tuple[str, dict[str, str]] | None]:
        cursor = {"last": 0}

        def next_run() -> tuple[str, dict[str, str]] | None:
            # What webhook_inbox_sensor asks: a run when rows arrived after its cursor.
            pending = self.store.inbox_pending_ids(after_id=cursor["last"])
            if not pending:
                return None
            cursor["last"] = pending[-1]
            return "webhook_events", {}

        return next_run

    # ---- the killer

    def _killer(self, started: float) -> None:
        """SIGKILL a run while its writes are in flight: the moment a sandbox's write
        counter moves, a run that writes there is killed after a random few ms, so the
        kill lands between a write reaching the service and its outcome being recorded,
        or between two chunks of one step."""
        cfg = self.config
        spacing = cfg.min_s * 0.8 / max(cfg.kills, 1)
        not_before = started + spacing * self.rng.uniform(0.3, 1.0)
        last = self._write_counters()
        by_system = dict.fromkeys(WRITE_JOBS, 0)
        while not self.stop_chaos.is_set() and self.kills < cfg.kills:
            time.sleep(SANDBOX_POLL_S)
            now = self._write_counters()
            moved = [system for system in now if now[system] > last[system]]
            last = now
            if not moved or time.monotonic() < not_before:
                continue
            # Kills alternate between the two services' writers: the system with fewer
            # kills so far goes first; the other only once it has waited a while, so a
            # session whose writes all go one way still gets its kills.
            wanted = min(by_system, key=lambda system: by_system[system])
            overdue = time.monotonic() > not_before + spacing
            targets = [wanted] if wanted in moved else (moved if overdue else [])
            candidates = [
                (system, run) for system in targets for run in self.runs.live(WRITE_JOBS[system])
            ]
            if not candidates:
                continue
            system, victim = self.rng.choice(candidates)
            time.sleep(self.rng.uniform(0, 0.15))
            if self.runs.kill(victim):
                self.kills += 1
                by_system[system] += 1
                self.kills_by_job[victim.job] = self.kills_by_job.get(victim.job, 0) + 1
                not_before = time.monotonic() + spacing * self.rng.uniform(0.3, 1.0)

    def _write_counters(self) -> dict[str, int]:
        intacct = self._get(self.sandboxes.intacct_url, "/_sandbox/stats")["writes"]
        zendesk = self._get(self.sandboxes.zendesk_url, "/_sandbox/stats")["writes"]
        org = zendesk.get("organization", {})
        return {
            "intacct": int(intacct.get(TICKET_OBJECT, 0)),
            "zendesk": int(org.get("create", 0)) + int(org.get("update", 0)),
        }

    # ---- the session

    def run(self) -> ChaosResult:
        return self.run_then(None)

    def run_then(self, after: Callable[[Session], dict[str, Any] | None] | None) -> ChaosResult:
        """The session; then `after(self)` while the sandboxes still run (the damage proof),
        its answer kept as `damage_check`."""
        cfg = self.config
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        port = _free_port()
        webhook_url = f"http://127.0.0.1:{port}{settings.WEBHOOK_PATH}"
        intacct_config, zendesk_config = _sandbox_configs(cfg, webhook_url)
        # Seeding goes in before faults are on; faults start with the first run.
        intacct_config.fault_rate = 0.0
        zendesk_config.fault_rate = 0.0
        self.store = StagingStore.open(self.ledger_url)  # migrated before anyone uses it
        try:
            with run_sandboxes(
                intacct_config=intacct_config, zendesk_config=zendesk_config
            ) as sandboxes:
                self.sandboxes = sandboxes
                result = self._run(sandboxes, port, timings, t0)
                if after is not None:
                    result.damage_check = after(self)
                return result
        finally:
            self.store.dispose()

    def _run(
        self, sandboxes: RunningSandboxes, port: int, timings: dict[str, float], t0: float
    ) -> ChaosResult:
        cfg = self.config
        seed_vendors(
            sandboxes,
            vendors=cfg.vendors,
            preexisting_fraction=cfg.preexisting_fraction,
            unlinked_organizations=cfg.unlinked_organizations,
            seed=cfg.seed,
        )
        seed_tickets(sandboxes, tickets=cfg.tickets, days=cfg.days, seed=cfg.seed)
        env = {
            **sandboxes.env,
            settings.ENV_STAGING_DATABASE_URL: self.ledger_url,
            settings.ENV_ZENDESK_WEBHOOK_SECRETS: WEBHOOK_SECRET,
            settings.ENV_TICKETS_START_DATE: (
                datetime.now(UTC).date() - timedelta(days=cfg.days + 5)
            ).isoformat(),
        }
        logs = self.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.runs = DagsterRuns(self.work / "dagster_home", env)
        self.kills = 0
        with webhook_receiver({**os.environ, **env}, port, logs) as receiver_url:
            timings["setup_s"] = round(time.monotonic() - t0, 1)
            t1 = time.monotonic()
            for url, kinds in (
                (sandboxes.intacct_url, INTACCT_FAULTS),
                (sandboxes.zendesk_url, ZENDESK_FAULTS),
            ):
                self._post(
                    url,
                    "/_sandbox/faults",
                    {
                        "rate": cfg.fault_rate,
                        "slow_ms": cfg.slow_ms,
                        "script": self._fault_script(kinds),
                    },
                )
            loops = [
                Traffic(
                    sandboxes.intacct_url,
                    sandboxes.zendesk_url,
                    self.stop_chaos,
                    interval_s=cfg.traffic_interval_s,
                    seed=cfg.seed,
                ),
                SessionInvalidator(
                    sandboxes.intacct_url, self.stop_chaos, interval_s=cfg.session_invalidate_s
                ),
                WebhookForger(
                    sandboxes.zendesk_url,
                    receiver_url,
                    WEBHOOK_SECRET,
                    self.stop_chaos,
                    interval_s=cfg.webhook_abuse_interval_s,
                    seed=cfg.seed,
                ),
            ]
            lanes = [
                threading.Thread(
                    target=self._lane,
                    args=("vendor_sync", lambda: ("vendor_sync", {})),
                    name="lane-vendor_sync",
                    daemon=True,
                ),
                threading.Thread(
                    target=self._lane,
                    args=("ticket_poll", self._ticket_poll_runs()),
                    name="lane-ticket_poll",
                    daemon=True,
                ),
                threading.Thread(
                    target=self._lane,
                    args=("webhook_events", self._sensor_runs()),
                    name="lane-webhook_events",
                    daemon=True,
                ),
            ]
            killer = threading.Thread(target=self._killer, args=(t1,), name="killer", daemon=True)
            try:
                for thread in [*loops, *lanes, killer]:
                    thread.start()
                deadline = t1 + cfg.max_s
                while time.monotonic() < deadline and not self.stop_chaos.is_set():
                    if time.monotonic() - t1 >= cfg.min_s and self.kills >= cfg.kills:
                        break
                    time.sleep(0.5)
            finally:
                # Traffic and abuse stop first, then faults; runs still in flight finish
                # (bounded by their timeout) so the quiet pass starts from a settled state.
                self.stop_chaos.set()
                for thread in [killer, *loops]:
                    thread.join(timeout=60)
                for url in (sandboxes.intacct_url, sandboxes.zendesk_url):
                    self._post(
                        url, "/_sandbox/faults", {"rate": 0.0, "latency_ms": 0.0, "script": []}
                    )
                self._post(sandboxes.intacct_url, "/_sandbox/config", {"latency_ms": 0.0})
                for lane in lanes:
                    lane.join(timeout=cfg.run_timeout_s + 30)
                self.runs.stop_all()
            timings["chaos_s"] = round(time.monotonic() - t1, 1)
            chaos_runs = self.runs.tally()
            stats_after_chaos = self._stats()

            t2 = time.monotonic()
            self._wait_webhooks_idle()
            quiet, reconciled, verdict = self._quiet_pass()
            timings["quiet_pass_s"] = round(time.monotonic() - t2, 1)
        stats = self._stats()
        timings["total_s"] = round(time.monotonic() - t0, 1)
        failed_tails = [
            f"{o.job} {o.status}: {o.tail[-600:]}"
            for o in self.runs.outcomes
            if o.status == "failed"
        ][:5]
        problems = [f"lane broke: {e}" for e in self.lane_errors]
        if self.kills < cfg.kills:
            problems.append(f"only {self.kills} of {cfg.kills} kills landed inside writes")
        problems += [
            f"quiet pass: {q['job']} {q['status']}" for q in quiet if q["status"] != "success"
        ]
        return ChaosResult(
            ledger=self.ledger_name,
            config=asdict(cfg),
            seconds=timings,
            kills=self.kills,
            kills_by_job=dict(self.kills_by_job),
            runs={"chaos": chaos_runs, "all": self.runs.tally()},
            quiet_pass=quiet,
            reconciliation_needed=reconciled,
            faults_injected={
                "intacct": dict(stats_after_chaos["intacct"].get("faults_injected") or {}),
                "zendesk": dict(stats_after_chaos["zendesk"]["faults"].get("injected") or {}),
            },
            intacct_requests={
                "total": stats["intacct"].get("requests"),
                "rejected_concurrent": stats["intacct"].get("rejected_concurrent"),
                "protocol_faults": stats["intacct"].get("protocol_faults"),
                "sessions_opened": stats["intacct"].get("functions", {}).get("getAPISession"),
            },
            zendesk_requests={
                "total": stats["zendesk"].get("requests_total"),
                "responses_by_status": stats["zendesk"].get("responses_by_status"),
                "rate_limited": stats["zendesk"].get("rate_limited"),
            },
            sessions=dict(loops[1].counts),
            traffic=dict(loops[0].counts),
            webhooks={
                **dict(loops[2].counts),
                "deliveries_attempted_by_zendesk": int(stats["zendesk"]["webhook_deliveries"]),
            },
            write_amplification=self._amplification(stats, verdict, loops[0].counts),
            verdict=verdict.as_dict(),
            failed_run_tails=failed_tails,
            problems=problems,
        )

    def _stats(self) -> dict[str, Any]:
        return {
            "intacct": self._get(self.sandboxes.intacct_url, "/_sandbox/stats"),
            "zendesk": self._get(self.sandboxes.zendesk_url, "/_sandbox/stats"),
        }

    def _wait_webhooks_idle(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._get(self.sandboxes.zendesk_url, "/_sandbox/stats")["webhook_pending"] == 0:
                return
            time.sleep(0.5)

    def _quiet_pass(self) -> tuple[list[dict[str, Any]], bool, Verdict]:
        """Faults off, traffic stopped: each lane's job once more, in the order the daemon
        would get to them; the full reconciliation only when that does not converge."""
        today = datetime.now(UTC).date().isoformat()
        timeout = self.config.quiet_run_timeout_s
        outcomes: list[RunOutcome] = [
            self.runs.execute("vendor_sync", timeout_s=timeout),
            self.runs.execute("webhook_events", timeout_s=timeout),
            self.runs.execute("ticket_poll", tags={"dagster/partition": today}, timeout_s=timeout),
        ]
        verdict = self.verify()
        reconciled = False
        if not verdict.clean:
            reconciled = True
            outcomes.append(self.runs.execute("full_reconciliation", timeout_s=timeout))
            outcomes.append(
                self.runs.execute(
                    "ticket_poll", tags={"dagster/partition": today}, timeout_s=timeout
                )
            )
            verdict = self.verify()
        return [asdict(o) | {"tail": o.tail[-600:]} for o in outcomes], reconciled, verdict

    def truth(self) -> Truth:
        intacct, zendesk = self.sandboxes.intacct_url, self.sandboxes.zendesk_url
        return Truth(
            vendors=self._get(intacct, "/_sandbox/records/VENDOR"),
            organizations=self._get(zendesk, "/_sandbox/organizations"),
            tickets=self._get(zendesk, "/_sandbox/tickets"),
            records=self._get(intacct, f"/_sandbox/records/{TICKET_OBJECT}"),
            inbox=inbox_rows(self.store),
            secrets=[WEBHOOK_SECRET],
        )

    def verify(self) -> Verdict:
        return verify(self.truth())

    def _amplification(
        self, stats: dict[str, Any], verdict: Verdict, traffic: Mapping[str, int]
    ) -> dict[str, Any]:
        """Writes the connector made per object it had to change. Every ticket record and
        every vendor's organization was written at least once in this session (records
        are created here; pre-existing organizations carry none of the mapped fields), so
        the object counts at the end are the number of objects changed; live traffic
        changed some of them again, which a perfect connector may also have to write
        (`traffic` gives how many such changes were made)."""
        record_writes = int(stats["intacct"]["writes"].get(TICKET_OBJECT, 0))
        org_writes_by_kind = stats["zendesk"]["writes"].get("organization", {})
        org_writes = int(org_writes_by_kind.get("create", 0)) + int(
            org_writes_by_kind.get("update", 0)
        )
        records = int(stats["intacct"]["records"].get(TICKET_OBJECT, 0))
        organizations = int(verdict.checked.get("vendors", 0))
        # At most this many writes were needed: one per object, plus one per later change
        # live traffic made (not every change needs its own write: two changes between
        # runs need one).
        record_bound = records + sum(
            traffic.get(k, 0) for k in ("ticket_retitled", "ticket_status_changed", "ticket_solved")
        )
        org_bound = organizations + sum(
            traffic.get(k, 0) for k in ("vendor_modified", "vendor_deactivated")
        )
        return {
            "record_writes_needed_at_most": record_bound,
            "record_writes_per_write_needed_at_least": round(record_writes / record_bound, 3)
            if record_bound
            else None,
            "organization_writes_needed_at_most": org_bound,
            "organization_writes_per_write_needed_at_least": round(org_writes / org_bound, 3)
            if org_bound
            else None,
            "intacct_record_writes": record_writes,
            "records_changed": records,
            "record_writes_per_record_changed": round(record_writes / records, 3)
            if records
            else None,
            "organization_writes": org_writes,
            "organizations_changed": organizations,
            "organization_writes_per_organization_changed": round(org_writes / organizations, 3)
            if organizations
            else None,
            "goal": 1.2,
        }
