"""Settings from the environment. Every name here is an environment variable (upper case)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-insecure-secret-change-me"
SERVICES: tuple[str, ...] = ("pipeline", "commissions", "relationships", "notifications")
# Sync workers that keep state (cursors, their outbox): schema/role name -> the package with its migrations.
INTEGRATIONS: dict[str, str] = {"aws_sync": "integrations.aws_partner_central"}
# The gateway owns a schema too (its read models, users and audit log), so it gets a role of its own.
DATABASE_OWNERS: tuple[str, ...] = (*SERVICES, "gateway", *INTEGRATIONS)


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
    outbox_batch: int = Field(default=500, ge=1, le=10000)
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
    # The local mailbox `partnerops up` runs (an SMTP sink); the admin page shows what it received.
    mailbox_dir: Path | None = None

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
