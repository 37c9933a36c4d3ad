"""What a failed `transaction="true"` operation reports: every result is rewritten.

The records themselves are restored by the gateway from its snapshot; this module only
decides what each `<result>` says afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector_pipeline.sandbox.intacct_envelope import Outcome, err

ROLLED_BACK = err(
    "XL03000009",
    "The entire transaction in this operation has been rolled back due to an error.",
)


def needs_rollback(transaction: bool, results: Sequence[Outcome]) -> bool:
    return transaction and any(r[0] == "failure" for r in results)


def rolled_back(results: Sequence[Outcome]) -> list[Outcome]:
    single = len(results) == 1
    rewritten: list[Outcome] = []
    for status, name, control_id, _data, errors in results:
        if status != "failure":
            rewritten.append(("aborted", name, control_id, None, [ROLLED_BACK]))
        elif single:
            # A lone failed function reports "aborted" with both errors (fixture
            # result_aborted_transaction.xml); in a batch the culprit stays "failure".
            rewritten.append(("aborted", name, control_id, None, [*errors, ROLLED_BACK]))
        else:
            rewritten.append(("failure", name, control_id, None, errors))
    return rewritten
