"""The code location: every asset, check, schedule, sensor and resource of ml-connector."""

from __future__ import annotations

import dagster as dg

from connector_pipeline.defs.resources import StagingResource

defs = dg.Definitions(
    resources={"staging": StagingResource()},
)
