"""runtime/topology.py is the one list of what the platform is made of: every part it names exists with
what the table says (a process to run, migrations, a NATS user, the commands handed to it), and the
`partnerops` CLI built from it finds the running platform or says plainly that there is none."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from runtime import bus_auth, cli, migrations, topology
from runtime.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("part", topology.PARTS, ids=lambda p: p.name)
def test_every_part_exists_as_declared(part: topology.Part) -> None:
    assert part.name in bus_auth.COMPONENTS, f"{part.name} has no NATS user in runtime/bus_auth.COMPONENTS"
    if part.runs:
        assert importlib.util.find_spec(f"{part.package}.__main__"), f"python -m {part.package} runs nothing"
    if part.schema:
        assert (migrations.migrations_dir(part.schema) / "env.py").is_file()
        assert topology.owner_of(part.schema) is part
    if part.enabled_by:
        from runtime.settings import Settings

        assert Settings.model_fields[part.enabled_by].annotation is bool


@pytest.mark.parametrize("command", topology.COMMANDS.values(), ids=lambda c: c.name)
def test_every_handed_over_command_is_one_its_module_has(command: topology.Delegated) -> None:
    spec = importlib.util.find_spec(command.module)
    assert spec is not None, f"no module {command.module}"
    is_package = spec.submodule_search_locations is not None
    group = importlib.import_module(f"{command.module}.__main__" if is_package else command.module).cli
    assert isinstance(group, click.Group)
    if not command.group:
        assert command.name in group.commands, f"python -m {command.module} has no command {command.name}"
    assert command.nats_user in bus_auth.COMPONENTS
    assert command.database is None or command.database in topology.DATABASE_OWNERS
    assert command.name in cli.cli.commands


def test_the_lists_derived_from_the_table() -> None:
    assert topology.SERVICES == ("pipeline", "commissions", "relationships", "notifications")
    assert topology.DATABASE_OWNERS == (*topology.SERVICES, "gateway", "aws_sync")
    assert [p.name for p in topology.PROCESSES] == [*topology.SERVICES, "gateway", "aws-sync"]
    with pytest.raises(KeyError, match="no part owns schema"):
        topology.owner_of("nobody")


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**_no_platform(), "DATA_DIR": str(tmp_path / "data")})


def _no_platform() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("NATS_URL", "DATABASE_URL", "DATABASE_ADMIN_URL") and not k.endswith("_FILE")}


@pytest.fixture
def partnerops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`partnerops ...` in this process, with no platform running and none named in the environment."""
    for name in ("NATS_URL", "DATABASE_URL", "DATABASE_ADMIN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(cli.cli, list(args), prog_name="partnerops")
    get_settings.cache_clear()


def test_create_admin_without_a_running_platform_says_so(partnerops) -> None:
    result = partnerops("create-admin", "--email", "a@example.com", "--generate")
    assert result.exit_code == 1
    assert "no running platform found" in result.output and "partnerops up" in result.output, result.output


def test_the_gateway_s_own_create_admin_names_the_command_that_finds_the_platform(tmp_path: Path) -> None:
    """Issue 16: the README's `python -m gateway create-admin` failed with "Could not parse SQLAlchemy URL"."""
    result = _run(["-m", "gateway", "create-admin", "--email", "a@example.com", "--generate"], tmp_path)
    assert result.returncode == 1
    assert "DATABASE_URL is not set: run `partnerops create-admin`" in result.stderr, result.stderr
    assert "SQLAlchemy" not in result.stderr


def test_a_handed_over_command_s_help_needs_no_platform_and_is_named_as_typed(tmp_path: Path) -> None:
    result = _run(["-m", "runtime.cli", "create-admin", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: partnerops create-admin [OPTIONS]" in result.stdout and "--email" in result.stdout


def test_unknown_commands_and_bad_arguments_are_refused_with_the_reason(partnerops) -> None:
    result = partnerops("migrat")
    assert result.exit_code == 2 and "No such command 'migrat'" in result.output
    result = partnerops("republish", "billing")
    assert result.exit_code == 2 and "'billing' is not one of" in result.output
    result = partnerops("republish", "pipeline", "--since", "yesterday")
    assert result.exit_code == 2 and "not an ISO time" in result.output
    result = partnerops("deadletters", "replay")
    assert result.exit_code == 2 and "replay needs sequence numbers or --all" in result.output
    result = partnerops("deadletters", "list")
    assert result.exit_code == 1 and "no running platform found" in result.output
