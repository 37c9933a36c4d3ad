"""`ml-connector check`, Dagster row: the instance configuration in DAGSTER_HOME loads.

The only check module that touches Dagster, and only to validate `dagster.yaml` without
building an instance (building one would create its storage)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from connector_pipeline.check.rows import CheckRow, failed, passed, warned

SYSTEM = "dagster"
CHECK = "instance configuration"


def check_instance(environ: Mapping[str, str]) -> list[CheckRow]:
    home = environ.get("DAGSTER_HOME")
    if not home:
        return [
            warned(
                SYSTEM,
                CHECK,
                "DAGSTER_HOME is not set: runs, schedules and sensors would not be kept",
                "set DAGSTER_HOME to a folder holding a copy of dagster.yaml (README)",
            )
        ]
    if not Path(home).is_dir():
        return [failed(SYSTEM, CHECK, f"DAGSTER_HOME={home} is not a folder", "create it")]
    # The loader Dagster itself uses: parses and validates dagster.yaml, creates nothing.
    from dagster._core.instance.config import dagster_instance_config

    try:
        config, _ = dagster_instance_config(home)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [
            failed(
                SYSTEM,
                CHECK,
                f"{home}/dagster.yaml does not load: {first}",
                "compare it with the dagster.yaml template in the repository",
            )
        ]
    sections = ", ".join(sorted(config)) or "defaults only"
    return [passed(SYSTEM, CHECK, f"{home}/dagster.yaml loads ({sections})")]
