"""The sandboxes read requests with their own code: nothing in `connector_pipeline.sandbox`
imports the Intacct or Zendesk client (DESIGN, "Layers"; import-linter holds the same rule
as the contract "sandbox is independent of the clients")."""

from __future__ import annotations

import ast
from pathlib import Path

import connector_pipeline.sandbox

FORBIDDEN = ("connector_pipeline.intacct", "connector_pipeline.zendesk")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from connector_pipeline import intacct` names the package in the alias.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def test_no_sandbox_module_imports_a_client() -> None:
    root = Path(connector_pipeline.sandbox.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10  # the scan really walked the package
    offenders = {
        str(path.relative_to(root)): sorted(m for m in _imported_modules(path) if _forbidden(m))
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_sees_each_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import connector_pipeline.intacct.xml\n"
        "from connector_pipeline import zendesk\n"
        "from connector_pipeline.zendesk.client import endpoint_key\n"
        "from connector_pipeline import settings\n",
        encoding="utf-8",
    )
    flagged = sorted(m for m in _imported_modules(sample) if _forbidden(m))
    assert flagged == [
        "connector_pipeline.intacct.xml",
        "connector_pipeline.zendesk",
        "connector_pipeline.zendesk.client",
        "connector_pipeline.zendesk.client.endpoint_key",
    ]
