"""Settings from the environment. Every name here is an environment variable (upper case).

Secrets may come from files instead (Docker and Kubernetes secrets), read here and nowhere else
(`secret_environment`): `<NAME>_FILE=/run/secrets/x` gives NAME the file's content, for any name
(`SECRET_KEY_FILE`, `DB_PASSWORD_PIPELINE_FILE`); `<URL>_PASSWORD_FILE` puts the file's content as
the password into the URL variable URL (`DATABASE_URL`, `DATABASE_ADMIN_URL`, `NATS_URL`,
`SMTP_URL`), so the URL itself stays in the plain environment and the password only in the file.
Setting a name both ways is refused."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

DEV_SECRET = "dev-only-insecure-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    environment: str = Field(default="development", pattern="^(development|test|production)$")
    secret_key: str = DEV_SECRET
    # The service's own login (its role can reach only its schema). Unset: the embedded server.
    database_url: str = ""
    # A superuser/owner login used only to create roles and schemas before services start.
    database_admin_url: str = ""
    nats_url: str = ""
    data_dir: Path = Path(".data")
    service_name: str = ""
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")

    # Database connections each process keeps open (half as many more for bursts, closed afterwards). The
    # gateway needs about one per request it serves at once (plus its consumers): below that, a busy
    # gateway opens and closes connections all the time.
    database_pool_size: int = Field(default=20, ge=1, le=200)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # The gateway under abuse (docs/security.md). Request bodies above this are refused with 413
    # before they are read (CSV imports have their own, larger limit: gateway.pipeline_csv.MAX_BYTES).
    gateway_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Proxies whose X-Forwarded-For/-Proto uvicorn believes: comma-separated addresses or networks,
    # "*" for any. Empty: none, so a client cannot pick the address sign-in throttling counts.
    gateway_forwarded_allow_ips: str = ""
    # Password hashes (argon2) computed at once, in threads; more sign-ins wait for a slot.
    gateway_password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    # A signed-in session ends after this long without a request (and always after 7 days).
    gateway_session_idle_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    # Longest lifetime an API token may be given (days); tokens always expire.
    gateway_token_max_days: int = Field(default=365, ge=1, le=3650)
    # A manager may not approve or pay commission entries of revenue they recorded themselves
    # (a second person does). False for a team of one.
    commissions_second_approver: bool = True

    # Consumers: how often a message is tried before it is dead-lettered, and how long to wait.
    bus_max_deliver: int = Field(default=8, ge=2)
    bus_ack_wait_seconds: float = Field(default=30.0, gt=0)
    bus_backoff_seconds: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0, 60.0)
    bus_fetch_batch: int = Field(default=256, ge=1, le=4096)
    # 3 on a NATS cluster: each stream then survives the loss of a server.
    bus_stream_replicas: int = Field(default=1, ge=1, le=5)
    # Rows a relay claims per transaction; its window keeps 256 of them in flight (runtime/outbox.py).
    outbox_batch: int = Field(default=2000, ge=1, le=10000)
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    outbox_retention_days: int = Field(default=14, ge=1)
    # Run the AWS Partner Central sync worker (integrations/aws_partner_central; docs/integrations.md).
    # Off by default: a fresh clone has no AWS account. Its own settings are AWS_PARTNER_CENTRAL_*.
    aws_partner_central_sync: bool = False

    # Email (services/notifications). smtp://user:password@host:port (STARTTLS when the server offers it),
    # smtps://... for TLS from the start. Unset: nothing is emailed (alerts still reach the in-app feed);
    # `partnerops up` points it at its local mailbox (docs/notifications.md).
    smtp_url: str = ""
    mail_from: str = "PartnerOps <partnerops@localhost>"
    # Where the links in emails point: the gateway as people reach it.
    public_url: str = "http://127.0.0.1:8000"
    # Delivery attempts of one email before it is marked failed (an admin can retry it).
    smtp_max_attempts: int = Field(default=8, ge=1, le=100)
    smtp_backoff_seconds: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
    smtp_poll_seconds: float = Field(default=2.0, gt=0)
    # Prometheus: a service answers GET /metrics on this port (unset: no endpoint; the gateway serves its
    # own at /metrics). Bound to METRICS_HOST, the loopback by default: the endpoint has no sign-in.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # The local mailbox `partnerops up` runs (an SMTP sink); the admin page shows what it received.
    mailbox_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvWithSecretFiles(settings_cls), dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.environment == "production":
            problem = weak_secret(self.secret_key)
            if problem:
                raise ValueError(f"SECRET_KEY {problem} (ENVIRONMENT=production); "
                                 "make one with `openssl rand -hex 32` or `partnerops secrets`")
        return self


MIN_SECRET_LENGTH = 32


def weak_secret(value: str) -> str | None:
    """Why `value` is not a long random secret, or None. It signs sessions and CSRF tokens, so a
    guessable one lets anyone sign in as anyone."""
    if value == DEV_SECRET:
        return "is the development default"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is {len(value)} characters long; at least {MIN_SECRET_LENGTH} are needed"
    if len(set(value)) < 12:
        return f"uses only {len(set(value))} different characters; it does not look random"
    return None


@lru_cache
def get_settings() -> Settings:
    return Settings()


# ------------------------------------------------------------------------------ secrets in files

FILE_SUFFIX = "_FILE"
URL_PASSWORD_SUFFIX = "_PASSWORD_FILE"
# The settings that are URLs and may carry a password (`<NAME>_PASSWORD_FILE`).
URL_VARIABLES: tuple[str, ...] = tuple(name.upper() for name in Settings.model_fields if name.endswith("_url"))
# The names a `<NAME>_FILE` may give: every setting, and the role passwords `partnerops migrate` reads
# (runtime/database_setup.role_passwords). Other programs' `_FILE` variables are left alone.
SECRET_FILE_PREFIXES = ("DB_PASSWORD_",)


def _reads_files(name: str) -> bool:
    return name.lower() in Settings.model_fields or name.startswith(SECRET_FILE_PREFIXES)


class SecretFileError(ValueError):
    """A `_FILE` variable that cannot be used; the message names the variable and the path, never a value."""


def secret_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment (`os.environ` unless given) with every secret file read in (see the module's
    docstring); the `_FILE` variables read are left out of the result."""
    env = dict(os.environ if environ is None else environ)
    out = dict(env)
    for variable, path in env.items():
        if not variable.endswith(FILE_SUFFIX):
            continue
        base, name = variable[: -len(URL_PASSWORD_SUFFIX)], variable[: -len(FILE_SUFFIX)]
        if variable.endswith(URL_PASSWORD_SUFFIX) and base in URL_VARIABLES:
            del out[variable]
            out[base] = _with_password(env.get(base, ""), _read_secret(variable, path), base, variable)
            continue
        if not _reads_files(name):
            continue
        del out[variable]
        if env.get(name):
            raise SecretFileError(f"both {name} and {variable} are set; set one")
        out[name] = _read_secret(variable, path)
    return out


def child_environment(overrides: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that is given `overrides` outright: the `_FILE` variables
    of those names are dropped, so the child does not find a name set both ways."""
    env = dict(os.environ if environ is None else environ)
    for name in overrides:
        env.pop(name + FILE_SUFFIX, None)
        env.pop(name + URL_PASSWORD_SUFFIX, None)
    return {**env, **overrides}


def _read_secret(variable: str, path: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SecretFileError(f"{variable}: cannot read {path} ({exc.strerror or exc.__class__.__name__})") from None
    # Files written by editors and `echo` end with a newline that is not part of the secret.
    value = text.rstrip("\r\n")
    if not value:
        raise SecretFileError(f"{variable}: {path} is empty")
    return value


def _with_password(url: str, password: str, name: str, variable: str) -> str:
    """`url` (or each of a comma-separated list) with `password` for the user it names."""
    out = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if not parts.username:
            raise SecretFileError(f"{variable} is set, but {name} ({'unset' if not url else 'no user in it'}) "
                                  "names no user to give the password to")
        if parts.password is not None:
            raise SecretFileError(f"{variable} is set, but {name} has a password in it already; set one")
        userinfo, _, host = parts.netloc.rpartition("@")
        netloc = f"{userinfo}:{quote(password, safe='')}@{host}"
        out.append(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
    return ",".join(out)


class _EnvWithSecretFiles(EnvSettingsSource):
    """The environment source, reading the `_FILE` variables in (`secret_environment`)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(secret_environment(), self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)
