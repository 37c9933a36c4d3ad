"""The receiver answers 400, never 500, to any signed body it cannot parse (issue 11,
section 3), and stores nothing for it."""

from __future__ import annotations

import pytest

from connector_pipeline.staging import StagingStore
from connector_pipeline_tests.webhook.deliveries import signed_headers
from connector_pipeline_tests.webhook.test_receiver import inbox, post, receiver

BODIES = {
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "deep-in-ticket": b'{"type": "zen:event-type:ticket.status_changed", "detail": '
    + b"[" * 50_000
    + b"]" * 50_000
    + b"}",
    "huge-integer": b'{"ml_connector": 1, "ticket": {"id": ' + b"9" * 5_000 + b"}}",
    "lone-surrogate": b'{"type": "\\ud800"}',
    "not-utf8": b'{"type": "\xff\xfe"}',
    "truncated": b'{"type": "zen:event-type:ticket.',
    "wrong-types": b'{"ml_connector": 1, "event": ["x"], "ticket": "seven"}',
    "event-wrong-types": b'{"type": "zen:event-type:ticket.status_changed", "detail": 5,'
    b' "id": {"x": 1}, "event": 3, "time": []}',
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_unparseable_signed_body_gets_400(store: StagingStore, name: str) -> None:
    body = BODIES[name]
    with receiver(store) as handle:
        response = post(handle, body, signed_headers(body))
    assert response.status_code == 400, response.text
    assert inbox(store) == []
