"""The AWS worker's settings, from AWS_PARTNER_CENTRAL_* variables. AWS credentials are not among them:
boto3 finds them the standard way (environment, ~/.aws, SSO, an instance or task role)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AwsSyncSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AWS_PARTNER_CENTRAL_", env_file=None, extra="ignore")

    # `Sandbox` is AWS's test catalog: opportunities there never reach AWS sellers.
    catalog: Literal["AWS", "Sandbox"] = "AWS"
    # The Selling API is served from us-east-1 only.
    region: str = "us-east-1"
    # Another endpoint (a local fake in tests and benchmarks); empty: AWS's own.
    endpoint_url: str = ""
    # botocore's retries: throttling (429), 5xx and connection errors, with backoff and jitter.
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    max_attempts: int = Field(default=8, ge=1, le=20)
    page_size: int = Field(default=100, ge=1, le=100)
    # Pull from this long before the cursor: ACE's list may show a change a moment after its time.
    overlap_seconds: int = Field(default=300, ge=0, le=86400)
    # The Partner Central solution a deal shared from PartnerOps is associated with, unless the person
    # sharing it names another (S- and digits).
    solution_id: str = Field(default="", pattern=r"^(S-[0-9]{1,19})?$")
    # Seconds to wait for AWS's answer to one call before botocore retries it.
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # How often waiting work (refreshes, passes) is looked for when nothing wakes the worker.
    poll_seconds: float = Field(default=2.0, gt=0)


@lru_cache
def get_aws_settings() -> AwsSyncSettings:
    return AwsSyncSettings()
