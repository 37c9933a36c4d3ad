"""The receiver's access to the ledger: group commit of deliveries, with a deadline.

Committing each delivery in its own transaction costs a round trip for BEGIN and COMMIT
(and a WAL flush on Postgres) per delivery. Deliveries that arrive while a commit is in
flight are instead written together in the next transaction, through the same
`StagingStore.append_inbox` calls; every delivery still gets its own answer, and none is
answered before its transaction committed. If a shared transaction fails, its deliveries
are retried one by one, so one bad row (or a deadlock between two workers' batches) can
only ever fail itself.

Database calls run on a small thread pool; a call that does not finish within the deadline
raises `LedgerUnavailable` (the receiver answers 503). The write may still commit later,
which is harmless: Zendesk's retry is then a duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi.responses import JSONResponse

from connector_pipeline import settings
from connector_pipeline.staging.store import InboxAppend, InboxEvent, StagingStore

T = TypeVar("T")


class LedgerUnavailable(Exception):
    """The inbox could not be written (or checked) in time."""


def not_stored_response() -> JSONResponse:
    """503 with Retry-After: nothing was stored, so the sender's retry loses nothing."""
    return JSONResponse(
        {"error": "ledger_unavailable", "detail": "the delivery was not stored; retry"},
        status_code=503,
        headers={"Retry-After": str(settings.WEBHOOK_RETRY_AFTER_S)},
    )


def describe(exc: BaseException) -> str:
    """The error's type, never its text: database errors can quote statement parameters,
    which here would be a delivery's body and headers."""
    orig = getattr(exc, "orig", None)
    return type(exc).__name__ + (f" ({type(orig).__name__})" if orig is not None else "")


@dataclass
class Ledger:
    store: StagingStore | None
    owns_store: bool
    timeout_s: float
    max_batch: int = settings.WEBHOOK_BATCH_MAX
    max_flushes: int = settings.WEBHOOK_CONCURRENT_FLUSHES
    executor: ThreadPoolExecutor | None = None
    migrated: bool = False
    _pending: list[tuple[InboxEvent, asyncio.Future[InboxAppend]]] = field(default_factory=list)
    _flushing: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> None:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                settings.WEBHOOK_LEDGER_THREADS, thread_name_prefix="webhook-ledger"
            )

    def stop(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
        if self.owns_store and self.store is not None:
            self.store.dispose()

    # ------------------------------------------------------------------ any call
    async def call(self, fn: Callable[[StagingStore], T]) -> T:
        """Run `fn(store)` on the pool within the deadline."""
        self.start()
        assert self.executor is not None
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self.executor, self._run, fn), timeout=self.timeout_s
            )
        except TimeoutError as exc:
            raise LedgerUnavailable(f"no answer within {self.timeout_s:g} s") from exc
        except Exception as exc:
            # Whatever the cause, nothing was stored: 503 makes Zendesk retry.
            raise LedgerUnavailable(describe(exc)) from exc

    def _run(self, fn: Callable[[StagingStore], T]) -> T:
        store = self.store
        if store is None:
            raise LedgerUnavailable("ledger not opened")
        if not self.migrated:
            # Covers a database that was unreachable at start-up and came back later.
            store.upgrade()
            self.migrated = True
        return fn(store)

    # ------------------------------------------------------------------ inbox appends
    async def append(self, event: InboxEvent) -> InboxAppend:
        """Commit one delivery (grouped with whatever else is waiting); returns once its
        transaction committed, or raises `LedgerUnavailable`."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[InboxAppend] = loop.create_future()
        # The outcome may land after this waiter gave up; mark it seen so asyncio does not
        # report an unretrieved exception.
        done.add_done_callback(_consume)
        self._pending.append((event, done))
        self._start_flushes()
        try:
            # `timeout()` rather than `wait_for()`: no extra task per delivery; `shield` keeps
            # the result deliverable to the batch even after this waiter gave up.
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.shield(done)
        except TimeoutError as exc:
            raise LedgerUnavailable(f"no answer within {self.timeout_s:g} s") from exc

    def _start_flushes(self) -> None:
        # SQLite has one write lock: a second transaction in flight would only sit in its
        # busy-wait, which backs off in steps of up to 100 ms.
        limit = 1 if self.store is not None and self.store.dialect == "sqlite" else self.max_flushes
        while self._pending and self._flushing < limit:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._flushing += 1
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[InboxEvent, asyncio.Future[InboxAppend]]]) -> None:
        events = [event for event, _ in batch]
        try:
            try:
                outcomes = await self.call(lambda store: _write(store, events))
            except LedgerUnavailable as exc:
                outcomes = [exc] * len(batch)
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if done.done():
                    continue
                if isinstance(outcome, InboxAppend):
                    done.set_result(outcome)
                else:
                    error = outcome if isinstance(outcome, LedgerUnavailable) else None
                    done.set_exception(error or LedgerUnavailable(describe(outcome)))
        finally:
            self._flushing -= 1
            self._start_flushes()


def _consume(future: asyncio.Future[InboxAppend]) -> None:
    if not future.cancelled():
        future.exception()


def _write(store: StagingStore, events: list[InboxEvent]) -> list[InboxAppend | Exception]:
    """Append all events in one transaction; if that fails, each in its own."""
    try:
        with store.transaction() as conn:
            return list(store.append_inbox_many(events, conn=conn))
    except Exception as exc:
        if len(events) == 1:
            return [exc]
    outcomes: list[InboxAppend | Exception] = []
    for event in events:
        try:
            outcomes.append(store.append_inbox(event))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes
