"""When Intacct deliveries (hints) call for a vendor read. Pure: the sensor gathers the facts.

A hint only says "something changed in Intacct"; any vendor read that begins reading after
the hint arrived covers it, because the read is incremental from the watermark. So:
- no read in progress: one read for everything pending;
- a read queued, or started but not yet reading: it will cover everything pending;
- a read reading since S: hints received before S are covered; for later ones exactly one
  more read, whose run key names S so that it is requested once however many arrive.
A burst of deliveries thus costs at most two reads, and a delivery never waits on more than
the read in progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HintDecision:
    run_key: str | None  # request a vendor read with this key; None: nothing to request
    reason: str


def decide_hint_run(
    *,
    pending: int,
    newest: datetime | None,
    read_started: datetime | None,
    active_run_starts: list[datetime | None],
) -> HintDecision:
    """`pending`/`newest`: unconsumed hints and when the newest arrived; `read_started`: when
    the latest vendor read began reading (ledger); `active_run_starts`: start times of the
    vendor-reading runs not finished yet (None while queued)."""
    if pending == 0 or newest is None:
        return HintDecision(None, "no Intacct deliveries waiting")
    if not active_run_starts:
        return HintDecision(
            f"intacct-hints-{newest.isoformat()}",
            f"{pending} Intacct deliveries waiting, newest at {newest.isoformat()}",
        )
    if len(active_run_starts) > 1:
        return HintDecision(None, "a vendor read is already queued behind the running one")
    [started] = active_run_starts
    if started is None or read_started is None or read_started < started:
        return HintDecision(None, "a vendor read about to start will cover them")
    if newest < read_started:
        return HintDecision(None, "the vendor read in progress covers them")
    return HintDecision(
        f"intacct-hints-after-{read_started.isoformat()}",
        "deliveries arrived during the vendor read in progress: one more read after it",
    )
