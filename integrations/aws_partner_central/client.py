"""The `partnercentral-selling` client: boto3's, configured once, called off the event loop.

Every call is checked by botocore against the service model that ships with it; throttling, 5xx and
connection errors are retried by botocore (adaptive or standard mode: exponential backoff with
jitter). What still fails reaches the caller as `AwsUnavailable` (try again later, nothing is lost)
or `AwsRefused` (this record cannot be read or written as asked)."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from integrations.aws_partner_central.settings import AwsSyncSettings

SERVICE = "partnercentral-selling"
# Errors that say "later", not "never".
_TRANSIENT = {"ThrottlingException", "InternalServerException", "ServiceUnavailableException",
              "RequestTimeout", "RequestTimeoutException", "TooManyRequestsException"}


class AwsUnavailable(Exception):
    """AWS did not answer usefully after botocore's retries; the work is tried again later."""


class AwsRefused(Exception):
    """AWS refused the call for this record (not found, access denied, validation, conflict)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def make_client(settings: AwsSyncSettings, **session: Any) -> BaseClient:
    config = Config(retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
                    connect_timeout=10, read_timeout=settings.read_timeout_seconds, user_agent_extra="PartnerOps")
    return boto3.session.Session(**session).client(
        SERVICE, region_name=settings.region, endpoint_url=settings.endpoint_url or None, config=config)


class PartnerCentral:
    """The calls the worker makes, each in a thread (boto3 blocks), errors sorted into two kinds."""

    def __init__(self, client: BaseClient, catalog: str) -> None:
        self.client = client
        self.catalog = catalog

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self.client, operation)
        try:
            return await asyncio.to_thread(method, Catalog=self.catalog, **params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code in _TRANSIENT or status >= 500 or status == 429:
                raise AwsUnavailable(f"{code} from AWS (after retries)") from exc
            raise AwsRefused(code, str(error.get("Message", ""))[:300]) from exc
        except BotoCoreError as exc:
            # Connection errors, timeouts, a reply that does not parse: nothing was learnt.
            raise AwsUnavailable(f"{exc.__class__.__name__}: {str(exc)[:200]}") from exc

    async def list_opportunities(self, **params: Any) -> dict[str, Any]:
        return await self.call("list_opportunities", **params)

    async def get_opportunity(self, identifier: str) -> dict[str, Any]:
        return await self.call("get_opportunity", Identifier=identifier)

    async def get_aws_summary(self, identifier: str) -> dict[str, Any] | None:
        """AWS's side of the opportunity; None while AWS has none (not submitted, or not shared)."""
        try:
            return await self.call("get_aws_opportunity_summary", RelatedOpportunityIdentifier=identifier)
        except AwsRefused as exc:
            if exc.code in ("ResourceNotFoundException", "AccessDeniedException"):
                return None
            raise
