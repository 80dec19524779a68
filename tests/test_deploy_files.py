"""The deployment files agree with the code: commands and health checks name real entry points, every
environment variable set is one the settings read, no password or SECRET_KEY is in any `environment:`
entry (each is a Docker secret, and each container gets only its own), passwords line up between
the migration and the services, NATS runs with the users file `partnerops secrets` writes, and the
Dockerfile copies paths that exist. No Docker engine is needed: the files are read as text/YAML
and checked against the importable code, the secrets are the files `partnerops secrets` really
writes (in a temporary directory), read the way each process reads them, and the compose NATS
config is run by a real nats-server. Each checker returns a list of problems, and the last tests
feed it deliberately broken copies to show it catches them."""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import functools
import hashlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from unittest import mock

import nats
import pytest
import yaml
from sqlalchemy.engine import make_url

from runtime import bus, bus_auth, cli, compose_secrets, database_setup
from runtime.embedded import free_port, nats_binary, wait_for_port
from runtime.settings import (
    FILE_SUFFIX,
    URL_PASSWORD_SUFFIX,
    URL_VARIABLES,
    SecretFileError,
    Settings,
    secret_environment,
)
from runtime.supervisor import DATABASE_NAME
from runtime.testing import eventually
from runtime.topology import DATABASE_OWNERS, PROCESSES, SERVICES, Part

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NATS_CONF = ROOT / "deploy" / "nats.conf"
NATS_USERS = ROOT / "deploy" / "nats-users.conf"

REQUIRED_FOR_SERVICES = ("DATABASE_URL", "NATS_URL", "SECRET_KEY")
REQUIRED_FOR_MIGRATE = ("DATABASE_ADMIN_URL", "SECRET_KEY")
# Read outside Settings: OpenTelemetry's standard variables (runtime/telemetry.py and the SDK), the
# per-role password overrides (runtime/database_setup.role_passwords), and Python's own.
# The AWS worker's own settings (AWS_PARTNER_CENTRAL_*, integrations/aws_partner_central/settings.py)
# and the AWS SDK's standard credential variables.
EXTRA_PREFIXES = ("OTEL_", "AWS_")
EXTRA_NAMES = {"PYTHONUNBUFFERED", *(f"DB_PASSWORD_{owner.upper()}" for owner in DATABASE_OWNERS)}
# A variable whose name says it holds a secret; it must not be set in an `environment:` entry.
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN")
SECRET_NAMES = ("SECRET_KEY", "PASSWORD", "TOKEN", "DATABASE_URL", "DATABASE_ADMIN_URL")
# Arguments a module accepts that are not string literals in its own source.
MODULE_ARGUMENTS: dict[str, set[str]] = {"runtime.health": {*DATABASE_OWNERS, *bus_auth.COMPONENTS, "--local"}}


# ---------------------------------------------------------------------------------------------
# Reading the files


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value: str, variables: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation; a required variable (`${X:?}`) that is not given gets a
    stand-in derived from its name, so two references to one variable resolve alike."""
    variables = variables or {}

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg, val = m.group("op"), m.group("arg"), variables.get(name)
        missing = val is None or (val == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and missing:
            return arg
        if op in (":?", "?") and missing:
            # Long and varied like the real secrets (production refuses short ones), still per name.
            return f"stand-in-{name.lower().replace('_', '-')}-{hashlib.sha256(name.encode()).hexdigest()[:32]}"
        if op in (":+", "+"):
            return "" if missing else arg
        return val or ""

    return _VAR.sub(sub, value)


def referenced_variables(value: str, *, required_only: bool = False) -> set[str]:
    return {
        m.group("name") or m.group("bare")
        for m in _VAR.finditer(value)
        if m.group(0) != "$$" and (not required_only or "?" in (m.group("op") or ""))
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_argv(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def healthcheck_argv(service: dict[str, Any]) -> list[str] | None:
    test = (service.get("healthcheck") or {}).get("test")
    if test is None:
        return None
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD":
        return [str(t) for t in test[1:]]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    return []  # NONE


def is_ours(service: dict[str, Any]) -> bool:
    """Runs the PartnerOps image (rather than nats or postgres)."""
    build = service.get("build")
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    return dockerfile.endswith("deploy/Dockerfile") or str(service.get("image", "")).startswith("partnerops")


def is_migrate(service: dict[str, Any]) -> bool:
    return as_argv(service.get("command"))[:2] == ["partnerops", "migrate"]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    out = []
    for line in joined:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    if args.startswith("["):
        return [str(a) for a in yaml.safe_load(args)]
    return shlex.split(args)


# ---------------------------------------------------------------------------------------------
# Entry points


def _string_constants(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _has_main_guard(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = {getattr(n, "id", None) for n in ast.walk(node.test)}
            if "__name__" in names and "__main__" in _string_constants(ast.unparse(node.test)):
                return True
    return False


def check_python_module(module: str, args: list[str]) -> list[str]:
    """`python -m module args...` would run something: the module (or its package's __main__)
    exists, has a main guard, and knows the arguments given."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return [f"python -m {module}: {exc}"]
    if spec is None:
        return [f"python -m {module}: no such module"]
    if spec.submodule_search_locations is not None:
        main_spec = importlib.util.find_spec(f"{module}.__main__")
        if main_spec is None or main_spec.origin is None:
            return [f"python -m {module}: package has no __main__"]
        origin = main_spec.origin
    else:
        origin = spec.origin or ""
    source = Path(origin).read_text()
    if not _has_main_guard(source):
        return [f"python -m {module}: {origin} has no `if __name__ == '__main__'`"]
    known = MODULE_ARGUMENTS.get(module, _string_constants(source))
    return [f"python -m {module}: unknown argument {a!r}" for a in args if not a.startswith("-") and a not in known]


def check_partnerops(args: list[str]) -> list[str]:
    """`partnerops args...`: the console script is runtime.cli:main and its parser accepts the args."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    if scripts.get("partnerops") != "runtime.cli:main":
        return [f"pyproject.toml: partnerops script is {scripts.get('partnerops')!r}, not runtime.cli:main"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--help"])  # argparse validates the words up to --help, then prints help and exits
    if exit_.value.code not in (0, None):
        return [f"partnerops {' '.join(args)}: rejected by runtime/cli.py: {err.getvalue().strip()}"]
    return []


def check_argv(argv: list[str], where: str) -> list[str]:
    """A command line that should start PartnerOps code, or an HTTP probe of it written in Python."""
    if not argv:
        return [f"{where}: empty command"]
    if argv[0] == "partnerops":
        return [f"{where}: {p}" for p in check_partnerops(argv[1:])]
    if Path(argv[0]).name.startswith("python"):
        if argv[1:2] == ["-m"] and len(argv) > 2:
            return [f"{where}: {p}" for p in check_python_module(argv[2], argv[3:])]
        if argv[1:2] == ["-c"] and len(argv) > 2:
            return [f"{where}: {p}" for p in check_python_code(argv[2])]
    return [f"{where}: {argv!r} is neither `python -m <module>`, `python -c <code>` nor `partnerops <command>`"]


def _routes(package: str) -> set[str]:
    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations
    found: set[str] = set()
    for location in spec.submodule_search_locations:
        for path in Path(location).rglob("*.py"):
            found |= {c for c in _string_constants(path.read_text()) if c.startswith("/")}
    return found


def check_python_code(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"python -c: does not compile: {exc}"]
    problems = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        problems += [f"python -c: imports missing module {n}" for n in names if importlib.util.find_spec(n) is None]
    for url in re.findall(r"https?://[^'\"\s]+", code):
        path = "/" + url.split("://", 1)[1].partition("/")[2].partition("?")[0]
        if path not in _routes("gateway"):
            problems.append(f"python -c: {url}: the gateway has no route {path}")
    return problems


# ---------------------------------------------------------------------------------------------
# Checkers


def check_compose_commands(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in compose["services"].items():
        if not is_ours(svc):
            continue
        argv = as_argv(svc.get("command"))
        problems += check_argv(argv, f"{name}.command")
        hc = healthcheck_argv(svc)
        if hc is None and not is_migrate(svc):
            problems.append(f"{name}: no health check")
        elif hc:
            problems += check_argv(hc, f"{name}.healthcheck")
            # A process's name on the bus is its SERVICE_NAME (the AWS worker: service aws_sync, user aws-sync).
            own = environment(svc).get("SERVICE_NAME", name)
            if hc[1:3] == ["-m", "runtime.health"] and hc[3:] != [own, "--local"]:
                problems.append(f"{name}.healthcheck: checks {hc[3:]} instead of its own instance ({own} --local)")
    # The compose file runs what the supervisor runs (runtime/topology.py), each under its schema's name.
    for part in PROCESSES:
        owner = compose_name(part)
        svc = compose["services"].get(owner)
        if svc is None:
            problems.append(f"no compose service for {owner}")
        elif as_argv(svc.get("command"))[1:] != part.argv:
            problems.append(f"{owner}.command is {svc.get('command')!r}; the supervisor runs python "
                            + " ".join(part.argv))
    if not any(is_migrate(s) for s in compose["services"].values()):
        problems.append("no one-shot `partnerops migrate` service")
    return problems


def _allowed(var: str, settings_names: set[str]) -> bool:
    if var.endswith(URL_PASSWORD_SUFFIX) and var[: -len(URL_PASSWORD_SUFFIX)] in URL_VARIABLES:
        return True
    if var.endswith(FILE_SUFFIX):
        var = var[: -len(FILE_SUFFIX)]
    return var in settings_names or var in EXTRA_NAMES or var.startswith(EXTRA_PREFIXES)


def check_compose_environment(compose: dict[str, Any]) -> list[str]:
    settings_names = set()
    prefix = Settings.model_config.get("env_prefix", "")
    for field_name, field in Settings.model_fields.items():
        settings_names.add((prefix + (field.alias or field_name)).upper())
    problems = []
    for name, svc in compose["services"].items():
        if not is_ours(svc):
            continue
        env = environment(svc)
        problems += [f"{name}: {var} is read by nothing (not a Settings field nor a documented extra)"
                     for var in env if not _allowed(var, settings_names)]
        required = REQUIRED_FOR_MIGRATE if is_migrate(svc) else REQUIRED_FOR_SERVICES
        problems += [f"{name}: {var} is not set" for var in required
                     if var not in env and var + FILE_SUFFIX not in env]
        try:
            resolved = resolved_environment(svc, compose)
        except SecretFileError as exc:
            problems.append(f"{name}: {exc}")
            continue
        with mock.patch.dict(os.environ, resolved, clear=True):
            try:
                Settings()
            except ValueError as exc:
                problems.append(f"{name}: its environment is rejected by Settings: {exc}")
    return problems


# ---------------------------------------------------------------------------------------------
# Secrets


@functools.cache
def generated_secrets() -> Path:
    """The files `partnerops secrets` writes, in a directory of their own (random, as in a real run)."""
    directory = Path(tempfile.mkdtemp(prefix="po-deploy-")) / "secrets"
    compose_secrets.write(directory)
    return directory


def secret_files(compose: dict[str, Any]) -> dict[str, str]:
    """Each top-level secret's file name (compose keeps them in ./secrets)."""
    return {name: Path(str((spec or {}).get("file", ""))).name for name, spec in (compose.get("secrets") or {}).items()}


def mounted_secrets(service: dict[str, Any]) -> dict[str, str]:
    """Where each secret the service lists appears in its container -> the secret's name."""
    out = {}
    for item in service.get("secrets") or []:
        if isinstance(item, str):
            source = target = item
        else:
            source, target = item["source"], item.get("target") or item["source"]
        out[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    return out


def resolved_environment(service: dict[str, Any], compose: dict[str, Any]) -> dict[str, str]:
    """The environment the service's process works with: variables interpolated, and each `_FILE`
    variable read from the secret compose mounts at that path (the files `partnerops secrets`
    writes). A path where no secret is mounted cannot be read (SecretFileError, as in the container).
    Our processes read them with runtime/settings.secret_environment itself; other images (Postgres)
    read `NAME_FILE` as NAME."""
    files = secret_files(compose)
    paths = {path: generated_secrets() / files.get(secret, f"no-such-secret-{secret}")
             for path, secret in mounted_secrets(service).items()}
    env = {k: interpolate(v) for k, v in environment(service).items()}
    env = {k: str(paths.get(v, Path("/nonexistent") / v.lstrip("/"))) if k.endswith(FILE_SUFFIX) else v
           for k, v in env.items()}
    if is_ours(service):
        return secret_environment(env)
    out = {k: v for k, v in env.items() if not k.endswith(FILE_SUFFIX)}
    for k, v in env.items():
        if k.endswith(FILE_SUFFIX):
            if not Path(v).is_file():
                raise SecretFileError(f"{k}: cannot read {v}")
            out[k[: -len(FILE_SUFFIX)]] = Path(v).read_text().rstrip("\r\n")
    return out


def image_of(service: dict[str, Any]) -> str:
    return str(service.get("image", "")).split(":")[0].rsplit("/", 1)[-1]


def needed_secrets(name: str, service: dict[str, Any]) -> set[str]:
    """The secret files a container needs, and so the only ones it may get."""
    if is_migrate(service):
        # Roles and schemas (the superuser, each role's password), the streams (the NATS operator).
        return {compose_secrets.SECRET_KEY, compose_secrets.POSTGRES_PASSWORD,
                compose_secrets.nats_password(bus_auth.OPERATOR), *map(compose_secrets.db_password, DATABASE_OWNERS)}
    if is_ours(service):
        user = environment(service).get("SERVICE_NAME", name)  # its NATS user (aws_sync runs as aws-sync)
        return {compose_secrets.SECRET_KEY, compose_secrets.nats_password(user),
                *([compose_secrets.db_password(name)] if name in DATABASE_OWNERS else []),
                # The AWS credentials reach the AWS worker alone.
                *([compose_secrets.AWS_CREDENTIALS] if user == "aws-sync" else [])}
    servers = {"nats": {compose_secrets.NATS_USERS}, "postgres": {compose_secrets.POSTGRES_PASSWORD}}
    return servers.get(image_of(service), set())


# The file variables whose secret does not depend on who reads it (the others are checked by the
# logins they make: check_database_logins, check_nats_logins).
FIXED_SECRET_FILES = {
    "SECRET_KEY_FILE": compose_secrets.SECRET_KEY,
    "POSTGRES_PASSWORD_FILE": compose_secrets.POSTGRES_PASSWORD,
    "DATABASE_ADMIN_URL_PASSWORD_FILE": compose_secrets.POSTGRES_PASSWORD,
}


def check_secrets(compose: dict[str, Any]) -> list[str]:
    """No secret in any `environment:` entry of any container (nor taken from the host's environment
    by interpolation); every secret is a file `partnerops secrets` writes; each container gets
    exactly the secrets it needs."""
    problems = []
    files = secret_files(compose)
    known = set(compose_secrets.names())
    problems += [f"secret {n}: {f!r} is not a file `partnerops secrets` writes"
                 for n, f in files.items() if f not in known]
    for name, svc in compose["services"].items():
        for var, value in environment(svc).items():
            if any(word in var for word in SECRET_WORDS) and not var.endswith(FILE_SUFFIX):
                problems.append(f"{name}: {var} puts a secret in the environment; mount it as a Docker secret"
                                f" ({var}{FILE_SUFFIX})")
            hidden = {v for v in referenced_variables(value) if any(word in v for word in SECRET_WORDS)}
            if hidden:
                problems.append(f"{name}: {var} takes {', '.join(sorted(hidden))} from the host's environment;"
                                " mount a Docker secret instead")
            if "://" in value and ":" in value.split("://", 1)[1].rpartition("@")[0]:
                problems.append(f"{name}: {var} has a password in its URL; use {var}{URL_PASSWORD_SUFFIX}")
        for var, secret in FIXED_SECRET_FILES.items():
            path = environment(svc).get(var)
            if path is not None and files.get(mounted_secrets(svc).get(path, ""), "") != secret:
                problems.append(f"{name}: {var} is {path}, not the secret {secret}")
        given = {files.get(s, s) for s in mounted_secrets(svc).values()}
        needed = needed_secrets(name, svc)
        if given - needed:
            problems.append(f"{name}: gets secrets it does not need: {', '.join(sorted(given - needed))}")
        if needed - given:
            problems.append(f"{name}: lacks secrets: {', '.join(sorted(needed - given))}")
        problems += [f"{name}: secret {s} is not defined at the top level" for s in mounted_secrets(svc).values()
                     if s not in files]
    return problems


def _resolved(name: str, svc: dict[str, Any], compose: dict[str, Any], problems: list[str]) -> dict[str, str]:
    try:
        return resolved_environment(svc, compose)
    except SecretFileError as exc:
        problems.append(f"{name}: {exc}")
        return {k: v for k, v in environment(svc).items() if not k.endswith(FILE_SUFFIX)}


def check_database_logins(compose: dict[str, Any]) -> list[str]:
    """Each owner's DATABASE_URL logs in as its own role with the password migrate gives that role,
    to the database the platform uses, on the compose Postgres (passwords as each process reads them
    from its secrets)."""
    services = compose["services"]
    migrate_name = next((n for n, s in services.items() if is_migrate(s)), None)
    if migrate_name is None:
        return ["no migrate service"]
    problems: list[str] = []
    migrate_env = _resolved(migrate_name, services[migrate_name], compose, problems)
    admin = make_url(migrate_env.get("DATABASE_ADMIN_URL", "postgresql://"))
    problems += _check_db_url("migrate.DATABASE_ADMIN_URL", admin, services)
    postgres = services.get(admin.host or "", {})
    pg_env = _resolved(admin.host or "postgres", postgres, compose, problems)
    if pg_env.get("POSTGRES_DB") != DATABASE_NAME:
        problems.append(f"{admin.host}: POSTGRES_DB is {pg_env.get('POSTGRES_DB')!r}, not {DATABASE_NAME!r}")
    if (admin.username, admin.password) != (pg_env.get("POSTGRES_USER", "postgres"), pg_env.get("POSTGRES_PASSWORD")) \
            or not admin.password:
        problems.append("migrate.DATABASE_ADMIN_URL does not log in as the Postgres superuser with its password")
    for owner in DATABASE_OWNERS:
        svc = services.get(owner)
        if svc is None:
            problems.append(f"no compose service for database owner {owner}")
            continue
        url = make_url(_resolved(owner, svc, compose, problems).get("DATABASE_URL", "postgresql://"))
        problems += _check_db_url(f"{owner}.DATABASE_URL", url, services)
        if url.username != owner:
            problems.append(f"{owner}.DATABASE_URL logs in as {url.username!r}, not its own role {owner!r}")
        expected = migrate_env.get(database_setup.password_variable(owner))
        if url.password != expected or not expected:
            problems.append(f"{owner}.DATABASE_URL password is not the one migrate sets for role {owner}"
                            f" (both need the secret {compose_secrets.db_password(owner)})")
    return problems


def _check_db_url(where: str, url: Any, services: dict[str, Any]) -> list[str]:
    problems = []
    if url.database != DATABASE_NAME:
        problems.append(f"{where}: database {url.database!r}, but the platform uses {DATABASE_NAME!r}")
    if url.host not in services:
        problems.append(f"{where}: host {url.host!r} is not a compose service")
    return problems


def check_depends_on(compose: dict[str, Any]) -> list[str]:
    services, problems = compose["services"], []
    for name in ("nats", "postgres"):
        if not (services.get(name) or {}).get("healthcheck"):
            problems.append(f"{name}: no health check")
    migrate = next((n for n, s in services.items() if is_migrate(s)), "migrate")
    wanted = {migrate: "service_completed_successfully", "nats": "service_healthy", "postgres": "service_healthy"}
    for name, svc in services.items():
        if not is_ours(svc) or is_migrate(svc):
            continue
        deps = svc.get("depends_on") or {}
        for dep, condition in wanted.items():
            got = deps.get(dep, {}).get("condition") if isinstance(deps, dict) else None
            if got != condition:
                problems.append(f"{name}: depends_on {dep} should be {condition}, is {got}")
    return problems


def check_nats(compose: dict[str, Any], compose_dir: Path) -> list[str]:
    nats = compose["services"].get("nats")
    if nats is None:
        return ["no nats service"]
    problems = []
    mounts = {}
    for volume in nats.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    conf_target = next((a for a in as_argv(nats.get("command")) if a.endswith(".conf")), None)
    source = mounts.get(conf_target or "")
    if source is None:
        return [f"nats: the config {conf_target!r} is not mounted"]
    conf_path = compose_dir / source
    if not conf_path.is_file():
        return [f"nats: {source} does not exist"]
    conf = conf_path.read_text()
    if not re.search(r"^\s*sync_interval\s*[:=]\s*always\s*$", conf, re.M):
        problems.append(f"{source}: jetstream sync_interval is not `always`")
    store = re.search(r"^\s*store_dir\s*[:=]\s*\"?([^\"\s]+)\"?", conf, re.M)
    if store is None or store.group(1) not in mounts:
        problems.append(f"{source}: store_dir is not on a mounted volume")
    port = re.search(r"^\s*http_port\s*[:=]\s*(\d+)", conf, re.M)
    health = " ".join(healthcheck_argv(nats) or [])
    if port is None or f":{port.group(1)}/healthz" not in health:
        problems.append("nats: the health check does not probe the monitoring port's /healthz")
    return problems


def check_nats_logins(compose: dict[str, Any], compose_dir: Path) -> list[str]:
    """NATS runs with the users file `partnerops secrets` writes (the secret, mounted where the config
    includes it); every process of ours logs in as its own NATS user (migrate as the operator) with
    the password that file gives that user."""
    services = compose["services"]
    nats = services.get("nats") or {}
    problems = []
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in nats.get("volumes", [])}
    conf_target = next((a for a in as_argv(nats.get("command")) if a.endswith(".conf")), "")
    conf_path = compose_dir / mounts.get(conf_target, "missing")
    include = re.search(r'^\s*include\s+"?([^"\s]+)"?', conf_path.read_text(), re.M) if conf_path.is_file() else None
    if include is None:
        return [f"nats: {conf_target} includes no users file (anonymous access)"]
    # nats-server resolves an include relative to the including file.
    users_target = str(Path(conf_target).parent / include.group(1))
    secret = mounted_secrets(nats).get(users_target)
    if secret is None:
        where = f"mounted from {mounts[users_target]}" if users_target in mounts else "not mounted"
        return [f"nats: the users file {users_target} is {where}, not the secret `partnerops secrets` writes"]
    if secret_files(compose).get(secret) != compose_secrets.NATS_USERS:
        problems.append(f"nats: {users_target} is the secret {secret}, not {compose_secrets.NATS_USERS}")
    for name, svc in services.items():
        if not is_ours(svc):
            continue
        url = _resolved(name, svc, compose, problems).get("NATS_URL", "")
        if not url:
            continue
        user = bus_auth.OPERATOR if is_migrate(svc) else environment(svc).get("SERVICE_NAME", name)
        userinfo = url.split("://", 1)[-1].rpartition("@")[0]
        got_user, _, password = userinfo.partition(":")
        if got_user != user:
            problems.append(f"{name}.NATS_URL logs in as {got_user!r}, not {user!r}")
            continue
        expected = (generated_secrets() / compose_secrets.nats_password(user)).read_text().strip()
        if password != expected:
            problems.append(f"{name}.NATS_URL password is not user {user}'s "
                            f"(the secret {compose_secrets.nats_password(user)})")
    return problems


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch(c, pat) for c in candidates):
            excluded = not negate
    return excluded


def check_dockerfile(dockerfile: Path, context: Path) -> list[str]:
    instructions = dockerfile_instructions(dockerfile.read_text())
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    ignore = [line.strip() for line in ignore_file.read_text().splitlines()
              if line.strip() and not line.startswith("#")] if ignore_file.exists() else []
    problems = []
    froms = [exec_form(args)[0] for word, args in instructions if word == "FROM"]
    if not froms or any(f != "python:3.11-slim" for f in froms):
        problems.append(f"FROM {froms}: every stage should be python:3.11-slim")
    for word, args in instructions:
        if word in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            if any(p.startswith("--from") for p in shlex.split(args)):
                continue
            for source in parts[:-1]:
                if not (context / source).exists():
                    problems.append(f"{word} {source}: no such path in the build context")
                elif _dockerignore_excludes(ignore, os.path.normpath(source)):
                    problems.append(f"{word} {source}: excluded by {ignore_file.name}")
        if word in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0].split("=")[0]]
            problems += [f"{word} {n}: no secrets in the image" for n in names if any(s in n for s in SECRET_NAMES)]
        if word in ("CMD", "ENTRYPOINT"):
            problems += check_argv(exec_form(args), f"Dockerfile {word}")
    users = [args for word, args in instructions if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the image runs as root: add a non-root USER")
    if not any(word == "RUN" and re.search(r"pip install (\S+ )*\.(\s|$)", args) for word, args in instructions):
        problems.append("the image does not `pip install .` the project")
    return problems


def all_problems(compose_path: Path = COMPOSE) -> list[str]:
    compose = load_compose(compose_path)
    return [
        *check_compose_commands(compose),
        *check_compose_environment(compose),
        *check_secrets(compose),
        *check_database_logins(compose),
        *check_depends_on(compose),
        *check_nats(compose, compose_path.parent),
        *check_nats_logins(compose, compose_path.parent),
    ]


# ---------------------------------------------------------------------------------------------
# The real files


def test_compose_commands_and_health_checks_name_real_entry_points() -> None:
    assert check_compose_commands(load_compose()) == []


def test_compose_environment_is_what_the_settings_read() -> None:
    assert check_compose_environment(load_compose()) == []


def test_every_owner_logs_in_with_the_password_migrate_sets() -> None:
    assert check_database_logins(load_compose()) == []


def test_services_wait_for_migration_and_healthy_servers() -> None:
    assert check_depends_on(load_compose()) == []


def test_nats_is_durable_and_monitored() -> None:
    assert check_nats(load_compose(), ROOT) == []


def test_every_process_logs_in_to_nats_as_itself() -> None:
    assert check_nats_logins(load_compose(), ROOT) == []


def test_no_secret_is_in_any_environment_and_each_container_gets_only_its_own() -> None:
    assert check_secrets(load_compose()) == []
    # What that means for the files as they are: no container's environment holds a value from a
    # secret file, and each container can read only the files it needs.
    compose = load_compose()
    values = {p.read_text().strip() for p in generated_secrets().iterdir() if p.name != compose_secrets.NATS_USERS}
    for name, svc in compose["services"].items():
        env = " ".join(f"{k}={interpolate(v)}" for k, v in environment(svc).items())
        assert not [v for v in values if v in env], name
        assert {secret_files(compose)[s] for s in mounted_secrets(svc).values()} == needed_secrets(name, svc)


def test_the_nats_users_template_is_what_the_code_generates() -> None:
    assert NATS_USERS.read_text() == bus_auth.deploy_users_conf(), \
        "run `partnerops nats-users > deploy/nats-users.conf`"


async def test_the_compose_nats_config_runs_with_the_secrets_and_takes_every_process_s_login(tmp_path: Path) -> None:
    """deploy/nats.conf as compose runs it, with the users file `partnerops secrets` wrote beside it
    (where compose mounts it), on a real nats-server: each process's NATS_URL, resolved from its own
    secrets, logs in as its user; a wrong password and no password are refused; the permission
    table is in force (the pipeline may not publish billing events)."""
    compose = load_compose()
    port = free_port()
    conf = NATS_CONF.read_text()
    conf = re.sub(r"^listen:.*$", f"listen: 127.0.0.1:{port}", conf, flags=re.M)
    conf = re.sub(r"^http_port:.*$", "", conf, flags=re.M)
    conf = re.sub(r'store_dir:\s*"[^"]*"', f"store_dir: {json_string(tmp_path / 'data')}", conf)
    (tmp_path / "nats.conf").write_text(conf)
    (tmp_path / "nats-users.conf").write_text((generated_secrets() / compose_secrets.NATS_USERS).read_text())
    proc = subprocess.Popen([nats_binary(), "-c", str(tmp_path / "nats.conf"), "-l", str(tmp_path / "nats.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        logged_in = []
        for name, svc in compose["services"].items():
            url = resolved_environment(svc, compose).get("NATS_URL")
            if not url:
                continue
            url = url.replace("@nats:4222", f"@127.0.0.1:{port}")
            nc = await bus.connect(url, name=name, attempts=1)
            await nc.flush()
            await nc.close()
            logged_in.append(name)
            if name == "pipeline":
                await _refused_billing_event(url)
        assert sorted(logged_in) == sorted(n for n, svc in compose["services"].items() if is_ours(svc))
        assert {*PROCESSES_BY_NAME, "migrate"} <= set(logged_in)
        for url in (f"nats://127.0.0.1:{port}", f"nats://pipeline:wrong@127.0.0.1:{port}"):
            with pytest.raises(PermissionError):
                await bus.connect(url, name="intruder", attempts=1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dockerfile() -> None:
    assert check_dockerfile(DOCKERFILE, ROOT) == []


def test_gateway_listens_on_all_interfaces_and_is_published() -> None:
    gateway = load_compose()["services"]["gateway"]
    env = {k: interpolate(v) for k, v in environment(gateway).items()}
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    published = [interpolate(str(p)).rsplit(":", 1)[-1] for p in gateway.get("ports", [])]
    assert env["GATEWAY_PORT"] in published
    assert f":{env['GATEWAY_PORT']}/healthz" in " ".join(healthcheck_argv(gateway) or [])


def test_every_service_of_the_platform_is_deployed() -> None:
    services = load_compose()["services"]
    assert {*SERVICES, "gateway", "nats", "postgres"} <= set(services)


def test_interpolation() -> None:
    assert interpolate("${A:-x}") == "x"
    assert interpolate("${A:-x}", {"A": "y"}) == "y"
    assert interpolate("a$${B}") == "a${B}"
    stand_in = interpolate("${PW:?set it}")
    assert stand_in.startswith("stand-in-pw-") and interpolate("${PW}", {"PW": stand_in}) == stand_in
    assert referenced_variables("u:${A:?}@h/${B:-d}") == {"A", "B"}
    assert referenced_variables("u:${A:?}@h/${B:-d}", required_only=True) == {"A"}


def test_every_secret_is_documented() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert sorted(n for n in compose_secrets.names() if n not in doc) == []
    assert sorted(n for n in secret_files(load_compose()) if f"`{n}`" not in doc) == []


def json_string(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def compose_name(part: Part) -> str:
    """A part's compose service: named after its schema (aws_sync), or itself when it has none."""
    return part.schema or part.name


PROCESSES_BY_NAME = [compose_name(part) for part in PROCESSES]


async def _refused_billing_event(url: str) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    async def refused() -> bool:
        return any('permissions violation for publish to "billing.invoice.paid.v1"' in e for e in errors)

    nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False, inbox_prefix=bus.inbox_prefix(url))
    try:
        await nc.publish("billing.invoice.paid.v1", b"{}")
        await nc.flush()
        await eventually(refused, timeout=10, what="the pipeline's billing event refused")
    finally:
        await nc.close()


# ---------------------------------------------------------------------------------------------
# The checkers catch mistakes


def _broken_compose(tmp_path: Path, edit: Any) -> Path:
    compose = load_compose()
    edit(compose["services"])
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(compose, sort_keys=False))
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "nats.conf").write_text(NATS_CONF.read_text())
    return path


def test_catches_a_missing_module_and_a_wrong_health_check(tmp_path: Path) -> None:
    def edit(services: dict[str, Any]) -> None:
        services["pipeline"]["command"] = ["python", "-m", "services.pipline"]
        services["commissions"]["healthcheck"]["test"] = ["CMD", "python", "-m", "runtime.healthz", "commissions"]
        services["relationships"]["healthcheck"]["test"] = ["CMD", "python", "-m", "runtime.health", "pipeline"]
        services["gateway"]["command"] = ["python", "-m", "gateway", "serv"]
        services["gateway"]["healthcheck"]["test"][-1] = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
        services["migrate"]["command"] = ["partnerops", "migrat"]

    problems = "\n".join(all_problems(_broken_compose(tmp_path, edit)))
    assert "python -m services.pipline: no such module" in problems
    assert "python -m runtime.healthz: no such module" in problems
    assert "relationships.healthcheck: checks ['pipeline'] instead of its own instance" in problems
    assert "python -m gateway: unknown argument 'serv'" in problems
    assert "the gateway has no route /health" in problems
    assert "partnerops migrat: rejected by runtime/cli.py" in problems


def test_catches_unread_and_missing_environment(tmp_path: Path) -> None:
    def edit(services: dict[str, Any]) -> None:
        env = services["notifications"]["environment"]
        env["NATS_ULR"] = env.pop("NATS_URL")
        del services["commissions"]["environment"]["SECRET_KEY_FILE"]
        services["pipeline"]["environment"]["LOG_FORMAT"] = "xml"
        services["relationships"]["environment"]["SECRET_KEY_FILE"] = "/run/secrets/db_password_relationships"

    problems = "\n".join(all_problems(_broken_compose(tmp_path, edit)))
    assert "notifications: NATS_ULR is read by nothing" in problems
    assert "notifications: NATS_URL is not set" in problems
    assert "commissions: SECRET_KEY is not set" in problems
    assert "pipeline: its environment is rejected by Settings" in problems
    assert "relationships: SECRET_KEY_FILE is /run/secrets/db_password_relationships, not the secret secret_key" \
        in problems


def test_catches_secrets_in_the_environment_and_secrets_given_to_the_wrong_container(tmp_path: Path) -> None:
    def edit(services: dict[str, Any]) -> None:
        services["gateway"]["environment"]["SECRET_KEY"] = "hunter2-but-much-longer-than-32-characters!"
        services["postgres"]["environment"]["POSTGRES_PASSWORD"] = "${POSTGRES_PASSWORD:?set it}"
        env = services["pipeline"]["environment"]
        env["NATS_URL"] = "nats://pipeline:${NATS_PASSWORD_PIPELINE}@nats:4222"
        del env["NATS_URL_PASSWORD_FILE"]
        services["commissions"]["environment"]["DATABASE_URL"] = "postgresql://commissions:hunter2@postgres:5432/partnerops"
        services["gateway"]["secrets"].append("db_password_pipeline")
        services["notifications"]["secrets"].remove("nats_password_notifications")
        services["relationships"]["secrets"].remove("secret_key")

    problems = "\n".join(all_problems(_broken_compose(tmp_path, edit)))
    assert "gateway: SECRET_KEY puts a secret in the environment" in problems
    assert "postgres: POSTGRES_PASSWORD puts a secret in the environment" in problems
    assert "postgres: POSTGRES_PASSWORD takes POSTGRES_PASSWORD from the host's environment" in problems
    assert "pipeline: NATS_URL takes NATS_PASSWORD_PIPELINE from the host's environment" in problems
    assert "pipeline: NATS_URL has a password in its URL" in problems
    assert "commissions: DATABASE_URL has a password in its URL" in problems
    assert "gateway: gets secrets it does not need: db_password_pipeline" in problems
    assert "notifications: lacks secrets: nats_password_notifications" in problems
    # The variable names a file the container does not have: the process could not start.
    assert "notifications: NATS_URL_PASSWORD_FILE: cannot read /nonexistent/run/secrets/nats_password_notifications" \
        in problems
    assert "relationships: lacks secrets: secret_key" in problems
    assert "relationships: SECRET_KEY_FILE: cannot read" in problems


def test_catches_mismatched_database_logins(tmp_path: Path) -> None:
    def edit(services: dict[str, Any]) -> None:
        del services["migrate"]["environment"]["DB_PASSWORD_GATEWAY_FILE"]  # migrate would make up its own
        env = services["commissions"]["environment"]
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("commissions@", "pipeline@").replace("/partnerops", "/app")
        services["postgres"]["environment"]["POSTGRES_DB"] = "postgres"
        # The admin login with the wrong secret (one migrate does have).
        services["migrate"]["environment"]["DATABASE_ADMIN_URL_PASSWORD_FILE"] = "/run/secrets/db_password_gateway"

    problems = "\n".join(all_problems(_broken_compose(tmp_path, edit)))
    assert "gateway.DATABASE_URL password is not the one migrate sets for role gateway" in problems
    assert "commissions.DATABASE_URL logs in as 'pipeline'" in problems
    assert "commissions.DATABASE_URL: database 'app'" in problems
    assert "POSTGRES_DB is 'postgres'" in problems
    assert "migrate.DATABASE_ADMIN_URL does not log in as the Postgres superuser with its password" in problems


def test_catches_services_that_do_not_wait_and_lax_nats(tmp_path: Path) -> None:
    def edit(services: dict[str, Any]) -> None:
        services["pipeline"]["depends_on"] = {"nats": {"condition": "service_started"}}
        del services["postgres"]["healthcheck"]

    path = _broken_compose(tmp_path, edit)
    conf = tmp_path / "deploy" / "nats.conf"
    conf.write_text(conf.read_text().replace("sync_interval: always", "sync_interval: 2m"))
    problems = "\n".join(all_problems(path))
    assert "pipeline: depends_on migrate should be service_completed_successfully, is None" in problems
    assert "pipeline: depends_on nats should be service_healthy, is service_started" in problems
    assert "postgres: no health check" in problems
    assert "jetstream sync_interval is not `always`" in problems


def test_catches_borrowed_nats_logins_and_a_users_file_that_is_not_the_secret(tmp_path: Path) -> None:
    def edit(services: dict[str, Any]) -> None:
        env = services["commissions"]["environment"]
        env["NATS_URL"] = env["NATS_URL"].replace("commissions@", "gateway@")  # borrows the gateway's user
        # The pipeline given the billing publisher's password (mounted, so it can read it).
        services["pipeline"]["environment"]["NATS_URL_PASSWORD_FILE"] = "/run/secrets/nats_password_billing"
        services["pipeline"]["secrets"].append("nats_password_billing")

    path = _broken_compose(tmp_path, edit)
    compose = yaml.safe_load(path.read_text())
    compose["secrets"]["nats_password_billing"] = {"file": "./secrets/nats_password_billing"}
    path.write_text(yaml.safe_dump(compose, sort_keys=False))
    problems = "\n".join(all_problems(path))
    assert "commissions.NATS_URL logs in as 'gateway', not 'commissions'" in problems
    assert "pipeline.NATS_URL password is not user pipeline's (the secret nats_password_pipeline)" in problems
    assert "pipeline: gets secrets it does not need: nats_password_billing" in problems

    # The committed template (passwords from variables the nats container no longer has) mounted
    # instead of the secret.
    nats = compose["services"]["nats"]
    del nats["secrets"]
    nats["volumes"].append("./deploy/nats-users.conf:/etc/nats/nats-users.conf:ro")
    path.write_text(yaml.safe_dump(compose, sort_keys=False))
    problems = "\n".join(all_problems(path))
    assert "nats: the users file /etc/nats/nats-users.conf is mounted from ./deploy/nats-users.conf, not the secret" \
        in problems
    assert "nats: lacks secrets: nats-users.conf" in problems
    (tmp_path / "deploy" / "nats.conf").write_text(NATS_CONF.read_text().replace('include "nats-users.conf"', ""))
    assert "includes no users file (anonymous access)" in "\n".join(all_problems(path))


def test_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = (DOCKERFILE.read_text()
              .replace("COPY runtime ./runtime", "COPY runtime ./runtime\nCOPY sevices ./services")
              .replace("USER 10001:10001", "USER root")
              .replace('CMD ["partnerops", "--help"]', 'ENV SECRET_KEY=abc\nCMD ["python", "-m", "gateway.nope"]'))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(broken)
    (tmp_path / "Dockerfile.dockerignore").write_text("*\n!pyproject.toml\n!contracts\n!services\n!gateway\n")
    problems = "\n".join(check_dockerfile(dockerfile, ROOT))
    assert "COPY sevices: no such path in the build context" in problems
    assert "COPY runtime: excluded by Dockerfile.dockerignore" in problems
    assert "the image runs as root" in problems
    assert "ENV SECRET_KEY: no secrets in the image" in problems
    assert "python -m gateway.nope: no such module" in problems
