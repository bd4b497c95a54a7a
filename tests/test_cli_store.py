"""``ada-governance store migrate`` on the stores that need no server (PostgreSQL's is in
tests/storage/test_postgres.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from ada_governance.cli import main
from ada_governance.storage.sqlite import SCHEMA_VERSION


def test_migrate_creates_a_sqlite_file_then_finds_it_current(tmp_path: Path) -> None:
    """The first run creates the file at the current version; the second says so."""
    url = f"sqlite:///{tmp_path / 'governance.db'}"
    runner = CliRunner()
    created = runner.invoke(main, ["store", "migrate", "--store", url])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == f"{url}: created schema version {SCHEMA_VERSION}"
    again = runner.invoke(main, ["store", "migrate", "--store", url])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"{url}: schema version {SCHEMA_VERSION}, up to date"


def test_migrate_uses_the_default_store(tmp_path: Path) -> None:
    """Without --store, the default store ($ADA_GOVERNANCE_STORE, set by conftest) is used."""
    result = CliRunner().invoke(main, ["store", "migrate"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "default.db").exists()


def test_migrate_refuses_a_newer_sqlite_file(tmp_path: Path) -> None:
    """A file written by a newer ada-governance exits 1, saying to upgrade."""
    path = tmp_path / "governance.db"
    url = f"sqlite:///{path}"
    assert CliRunner().invoke(main, ["store", "migrate", "--store", url]).exit_code == 0
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE ada_schema SET version = 99")
    connection.close()
    result = CliRunner().invoke(main, ["store", "migrate", "--store", url])
    assert result.exit_code == 1
    assert "newer ada-governance" in result.stderr


def test_migrate_on_memory_says_there_is_nothing_to_migrate() -> None:
    """The memory store has no schema: the command says so and exits 0."""
    result = CliRunner().invoke(main, ["store", "migrate", "--store", "memory://"])
    assert result.exit_code == 0, result.output
    assert "no schema to migrate" in result.stdout


def test_migrate_refuses_an_unknown_url() -> None:
    """A URL no store accepts exits 1 with the accepted forms."""
    result = CliRunner().invoke(main, ["store", "migrate", "--store", "mysql://db/g"])
    assert result.exit_code == 1
    assert "postgresql://" in result.stderr
