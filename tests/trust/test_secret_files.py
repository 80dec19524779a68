"""Secrets from files (Docker and Kubernetes secrets), read in one place: runtime/settings.py.

`<NAME>_FILE` gives NAME the file's content; `<URL>_PASSWORD_FILE` puts it as the password into a
URL; a name set both ways, an empty or unreadable file, or a URL with no user are refused with a
message that names the variable and the path and never the secret. `partnerops secrets` writes the
files compose mounts, keeping what exists."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from unittest import mock

import pytest

from runtime import bus_auth, compose_secrets, database_setup
from runtime.settings import SecretFileError, Settings, child_environment, secret_environment
from runtime.supervisor import Platform


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_name_file_gives_the_name_the_file_s_content(tmp_path: Path) -> None:
    key = "k" * 20 + "0123456789abcdefghijkl"
    env = {"SECRET_KEY_FILE": _file(tmp_path, "key", key + "\n"), "ENVIRONMENT": "production",
           "DB_PASSWORD_PIPELINE_FILE": _file(tmp_path, "db", "s3cret\r\n")}
    assert secret_environment(env) == {"SECRET_KEY": key, "ENVIRONMENT": "production", "DB_PASSWORD_PIPELINE": "s3cret"}
    with mock.patch.dict(os.environ, env, clear=True):
        assert Settings().secret_key == key
        assert database_setup.role_passwords(["pipeline"], None) == {"pipeline": "s3cret"}


def test_a_url_password_file_puts_the_password_into_the_url(tmp_path: Path) -> None:
    password = _file(tmp_path, "pw", "p@ss/wörd:1\n")
    env = {"NATS_URL": "nats://pipeline@nats:4222,nats://pipeline@nats-2:4222", "NATS_URL_PASSWORD_FILE": password,
           "DATABASE_URL": "postgresql+asyncpg://pipeline@db:5432/partnerops?ssl=require",
           "DATABASE_URL_PASSWORD_FILE": password}
    with mock.patch.dict(os.environ, env, clear=True):
        settings = Settings()
    quoted = "p%40ss%2Fw%C3%B6rd%3A1"
    assert settings.nats_url == f"nats://pipeline:{quoted}@nats:4222,nats://pipeline:{quoted}@nats-2:4222"
    assert settings.database_url == f"postgresql+asyncpg://pipeline:{quoted}@db:5432/partnerops?ssl=require"
    # The URL parsers the runtime uses read the password back unchanged.
    from sqlalchemy.engine import make_url
    assert make_url(settings.database_url).password == "p@ss/wörd:1"


@pytest.mark.parametrize(("env", "message"), [
    ({"SECRET_KEY": "x", "SECRET_KEY_FILE": "{f}"}, "both SECRET_KEY and SECRET_KEY_FILE are set"),
    ({"SECRET_KEY_FILE": "{empty}"}, "SECRET_KEY_FILE: {empty} is empty"),
    ({"SECRET_KEY_FILE": "{missing}"}, "SECRET_KEY_FILE: cannot read {missing} (No such file or directory)"),
    ({"NATS_URL_PASSWORD_FILE": "{f}"}, "NATS_URL_PASSWORD_FILE is set, but NATS_URL (unset) names no user"),
    ({"NATS_URL": "nats://nats:4222", "NATS_URL_PASSWORD_FILE": "{f}"}, "NATS_URL (no user in it) names no user"),
    ({"NATS_URL": "nats://u:p@nats:4222", "NATS_URL_PASSWORD_FILE": "{f}"}, "NATS_URL has a password in it already"),
])
def test_what_cannot_be_used_is_refused_by_name_never_showing_the_secret(tmp_path: Path, env: dict[str, str],
                                                                         message: str) -> None:
    paths = {"f": _file(tmp_path, "f", "the-secret-value"), "empty": _file(tmp_path, "empty", "\n"),
             "missing": str(tmp_path / "missing")}
    env = {k: v.format(**paths) for k, v in env.items()}
    with mock.patch.dict(os.environ, env, clear=True), pytest.raises(SecretFileError) as caught:
        Settings()
    assert message.format(**paths) in str(caught.value)
    assert "the-secret-value" not in str(caught.value)


def test_other_programs_file_variables_are_left_alone(tmp_path: Path) -> None:
    env = {"TF_CLI_CONFIG_FILE": "/nonexistent", "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
           "PYTHONSTARTUP_FILE": "x"}
    assert secret_environment(env) == env


def test_a_child_given_a_name_outright_does_not_also_get_its_file_variable(tmp_path: Path) -> None:
    env = {"NATS_URL": "nats://cli@nats:4222", "NATS_URL_PASSWORD_FILE": "/run/secrets/nats_password_cli",
           "SECRET_KEY_FILE": "/run/secrets/secret_key", "LOG_LEVEL": "INFO"}
    child = child_environment({"NATS_URL": "nats://cli:pw@nats:4222", "SECRET_KEY": "k"}, env)
    assert child == {"NATS_URL": "nats://cli:pw@nats:4222", "SECRET_KEY": "k", "LOG_LEVEL": "INFO"}
    assert secret_environment(child) == child


def test_partnerops_up_gives_no_child_the_operator_s_secret_files(tmp_path: Path) -> None:
    platform = Platform(Settings(environment="test"), nats_url="nats://127.0.0.1:4222",
                        admin_url="postgresql://postgres:pw@127.0.0.1:5432/partnerops",
                        db_passwords={"pipeline": "role-pw"}, secret="k" * 40)
    operator_env = {"DATABASE_ADMIN_URL_PASSWORD_FILE": "/s/pg", "POSTGRES_PASSWORD_FILE": "/s/pg",
                    "DB_PASSWORD_COMMISSIONS_FILE": "/s/c", "SECRET_KEY_FILE": "/s/k",
                    "NATS_URL_PASSWORD_FILE": "/s/n", "LOG_LEVEL": "DEBUG"}
    with mock.patch.dict(os.environ, operator_env, clear=True):
        env = platform.env_for("pipeline")
    assert not [k for k in env if k.endswith("_FILE")]
    assert env["LOG_LEVEL"] == "DEBUG" and env["SECRET_KEY"] == "k" * 40


def test_partnerops_secrets_writes_every_file_once_and_keeps_them(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    created = compose_secrets.write(directory)
    assert created == compose_secrets.names()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    values = {n: (directory / n).read_text().strip() for n in compose_secrets.password_names()}
    assert len(set(values.values())) == len(values), "every secret is independent"
    assert all(stat.S_IMODE((directory / n).stat().st_mode) == 0o644 for n in compose_secrets.names())
    assert len(values[compose_secrets.SECRET_KEY]) == 64
    with mock.patch.dict(os.environ, {"ENVIRONMENT": "production",
                                      "SECRET_KEY_FILE": str(directory / compose_secrets.SECRET_KEY)}, clear=True):
        Settings()  # strong enough for production
    users = (directory / compose_secrets.NATS_USERS).read_text()
    passwords = {u: values[compose_secrets.nats_password(u)] for u in bus_auth.COMPONENTS}
    assert users == compose_secrets.USERS_HEADER + bus_auth.authorization_block(passwords)

    # Again: nothing new, nothing changed. After a password file is removed (rotation), only it is made
    # anew, and the users file carries the new password.
    assert compose_secrets.write(directory) == []
    assert {n: (directory / n).read_text().strip() for n in values} == values
    gateway = compose_secrets.nats_password("gateway")
    (directory / gateway).unlink()
    assert compose_secrets.write(directory) == [gateway]
    new = (directory / gateway).read_text().strip()
    assert new != values[gateway] and f'"{new}"' in (directory / compose_secrets.NATS_USERS).read_text()
    assert values[gateway] not in (directory / compose_secrets.NATS_USERS).read_text()
