"""The dagster.yaml template a user copies into DAGSTER_HOME must load as it is."""

import shutil
from pathlib import Path

import dagster as dg

from connector_pipeline_tests.support import REPO_ROOT


def test_dagster_yaml_template_loads_with_queue_pools_and_monitoring(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1  # intacct_api stays at 1
        assert concurrency.run_queue_config is not None
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        # Run retries cover crashes only: a refused password must not be tried again.
        assert instance.run_retries_enabled
        assert not instance.run_retries_retry_on_asset_or_op_failure
        # Run monitoring can see a killed run worker (e2e/test_production.py kills one).
        assert instance.run_launcher.supports_check_run_worker_health
    finally:
        instance.dispose()
