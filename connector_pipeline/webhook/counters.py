"""Delivery counters of one receiver process, for `/healthz` and `/metrics`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"
LEDGER_ERROR = "ledger_error"


@dataclass
class DeliveryCounters:
    """Counts by outcome, and rejections by reason. Updated only from the event loop
    thread, so no lock is needed."""

    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)

    def accepted(self) -> None:
        self.outcomes[ACCEPTED] += 1

    def duplicate(self) -> None:
        self.outcomes[DUPLICATE] += 1

    def rejected(self, reason: str) -> None:
        self.outcomes[REJECTED] += 1
        self.rejections[reason] += 1

    def ledger_error(self) -> None:
        self.outcomes[LEDGER_ERROR] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            ACCEPTED: self.outcomes[ACCEPTED],
            DUPLICATE: self.outcomes[DUPLICATE],
            REJECTED: self.outcomes[REJECTED],
            LEDGER_ERROR: self.outcomes[LEDGER_ERROR],
            "rejected_by_reason": dict(sorted(self.rejections.items())),
        }

    def prometheus(self, prefix: str = "ml_connector_webhook") -> str:
        """The counters in the Prometheus text exposition format."""
        lines = [
            f"# HELP {prefix}_deliveries_total Webhook deliveries by outcome.",
            f"# TYPE {prefix}_deliveries_total counter",
        ]
        for outcome in (ACCEPTED, DUPLICATE, REJECTED, LEDGER_ERROR):
            lines.append(
                f'{prefix}_deliveries_total{{outcome="{outcome}"}} {self.outcomes[outcome]}'
            )
        lines += [
            f"# HELP {prefix}_rejections_total Rejected webhook deliveries by reason.",
            f"# TYPE {prefix}_rejections_total counter",
        ]
        for reason, count in sorted(self.rejections.items()):
            lines.append(f'{prefix}_rejections_total{{reason="{reason}"}} {count}')
        return "\n".join(lines) + "\n"
