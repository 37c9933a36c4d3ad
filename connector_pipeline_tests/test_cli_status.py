"""`ml-connector status` and `db quarantine` read the ledger the deployment uses, and
never create an empty one."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from connector_pipeline import settings
from connector_pipeline.cli import main
from connector_pipeline.staging import StagingStore


def cli(args: list[str], home: Path, **env: str) -> tuple[int, str]:
    environ = {settings.ENV_ML_CONNECTOR_HOME: str(home), "DAGSTER_HOME": "", **env}
    environ.setdefault(settings.ENV_STAGING_DATABASE_URL, "")
    result = CliRunner().invoke(main, args, env=environ)
    return result.exit_code, result.output


def test_reading_a_missing_ledger_says_so_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args in (["db", "quarantine"], ["status"]):
        code, output = cli(args, home)
        assert code != 0
        assert f"no ledger at {home / 'staging.db'}" in output
        assert f"the default under {settings.ENV_ML_CONNECTOR_HOME}" in output
    assert not (home / "staging.db").exists()


def test_the_cli_reads_the_ledger_the_demo_wrote_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{tmp_path / 'demo-staging.db'}"
    (home / settings.STAGING_URL_FILENAME).write_text(url + "\n")
    store = StagingStore.open(url)
    try:
        store.quarantine_add("organization", "VCASE-15", "external id 'vcase-15' collides")
        store.set_cursor("intacct_vendors/VENDOR/watermark", "2026-11-25T10:00:00+00:00")
    finally:
        store.dispose()

    code, output = cli(["db", "quarantine"], home)
    assert code == 0, output
    assert str(home / settings.STAGING_URL_FILENAME) in output
    assert output.splitlines()[-1] == "1 open"

    # The last successful run per asset comes from the Dagster instance beside the ledger.
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:

        @dg.asset(name="intacct_vendors")
        def stand_in() -> None:
            pass

        assert dg.materialize([stand_in], instance=instance).success
    code, output = cli(["status"], home)
    assert code == 0, output
    assert "quarantine: 1 open" in output
    assert "organization      external id … collides" in output
    assert "intacct_vendors/VENDOR/watermark" in output
    assert "quarantine                     1" in output
    lines = {line.split()[0]: line for line in output.splitlines() if line.startswith("  ")}
    assert "ago (run " in lines["intacct_vendors"]
    assert "never" in lines["zendesk_organizations"]


def test_every_option_has_help_text() -> None:
    import click

    def walk(command: click.Command) -> list[tuple[str, str]]:
        missing = [
            (command.name or "", p.name or "")
            for p in command.params
            if isinstance(p, click.Option) and not p.help
        ]
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                missing += walk(sub)
        return missing

    mine = [main.commands[n] for n in ("db", "status", "demo", "webhook")]
    assert [m for c in mine for m in walk(c)] == []
