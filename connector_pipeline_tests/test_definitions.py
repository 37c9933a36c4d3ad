"""The code location loads, the way `dagster dev` and the webserver load it."""

from __future__ import annotations

import tomllib

import dagster as dg
import yaml

import connector_pipeline.definitions
from connector_pipeline_tests.support import REPO_ROOT


def test_definitions_are_loadable() -> None:
    defs = connector_pipeline.definitions.defs
    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)


def test_staging_resource_is_bound() -> None:
    resources = connector_pipeline.definitions.defs.resources or {}
    assert "staging" in resources


def test_workspace_and_pyproject_point_at_the_definitions() -> None:
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    modules = [entry["python_module"]["module_name"] for entry in workspace["load_from"]]
    assert modules == ["connector_pipeline.definitions"]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == "connector_pipeline.definitions"
