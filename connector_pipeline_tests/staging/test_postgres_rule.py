"""Without CONNECTOR_TEST_POSTGRES_URL the Postgres cases skip; with CI=true they fail."""

from __future__ import annotations

import os
import subprocess
import sys

from connector_pipeline_tests.conftest import POSTGRES_ENV
from connector_pipeline_tests.support import REPO_ROOT

TARGET = "connector_pipeline_tests/staging/test_upserts.py::test_cursor_set_get_overwrite"
RUN_TIMEOUT_S = 120


def _run_pytest(*nodes: str, **env: str) -> subprocess.CompletedProcess[str]:
    child_env = {
        k: v for k, v in os.environ.items() if k not in (POSTGRES_ENV, "CI", "PYTEST_ADDOPTS")
    }
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *nodes],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def test_postgres_cases_skip_without_a_server() -> None:
    result = _run_pytest(f"{TARGET}[postgres]")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert f"{POSTGRES_ENV} is not set" in result.stdout


def test_postgres_cases_fail_in_ci_without_a_server() -> None:
    # The SQLite twin runs alongside, so the failure is the Postgres rule and nothing else.
    result = _run_pytest(f"{TARGET}[sqlite]", f"{TARGET}[postgres]", CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout
    assert "CI=true: Postgres tests must run" in result.stdout
