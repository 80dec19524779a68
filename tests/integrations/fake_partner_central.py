"""A local HTTP fake of the Partner Central Selling endpoint, for boto3 pointed at it with
`endpoint_url`: it speaks botocore's JSON 1.0 protocol (POST /, `X-Amz-Target:
AWSPartnerCentralSelling.<Operation>`), checks every request against the operation's input shape in
botocore's own model (a request the model refuses is a test failure), and serves a catalog of
opportunities sorted and paged the way ListOpportunities documents. Faults are scripted per call:
throttling (429), a server error (500), a gate that holds one call until the test lets it go (to
kill the worker mid-page), and an answer held after the work is done (a timeout the caller retries).
CreateOpportunity is idempotent by its ClientToken, as AWS's is."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
from botocore.validate import validate_parameters

MODEL = botocore.session.get_session().get_service_model("partnercentral-selling")
PREFIX = "AWSPartnerCentralSelling."


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        # ISO 8601 keeps the microseconds exact (epoch seconds as a float would round them).
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


@dataclass
class Fake:
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    # (operation, nth call of it) -> status to answer instead (429 throttling, 500 server error).
    faults: dict[tuple[str, int], int] = field(default_factory=dict)
    # Called before answering each call (a test may block here, or change the catalog mid-page).
    before: Callable[[str, dict[str, Any], int], None] | None = None
    after: Callable[[str, dict[str, Any], int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # CreateOpportunity's ClientTokens and the opportunity each made (AWS's idempotency).
    tokens: dict[str, str] = field(default_factory=dict)
    id_base: int = 0
    # EngagementInvitationSummaries ListEngagementInvitations answers (one page).
    invitations: list[dict[str, Any]] = field(default_factory=list)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def answer(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append((operation, params))
            nth = self.count(operation)
        if self.before is not None:
            self.before(operation, params, nth)
        try:
            validate_parameters(params, MODEL.operation_model(operation).input_shape)
        except Exception as exc:
            self.invalid.append(f"{operation}: {exc}")
            return 400, {"__type": "ValidationException", "message": str(exc)[:200]}
        status = self.faults.get((operation, nth))
        if status == 429:
            return 429, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        if status == 500:
            return 500, {"__type": "InternalServerException", "message": "mid-page failure"}
        handler = getattr(self, operation, None)
        if handler is None:
            return 400, {"__type": "ValidationException", "message": f"{operation} is not faked"}
        answer = handler(params)
        if self.after is not None:
            # Done on AWS's side; the answer may still be lost (a test holds it past the read timeout).
            self.after(operation, params, nth)
        return 200, answer

    def ListOpportunities(self, params: dict[str, Any]) -> dict[str, Any]:
        after = (params.get("LastModifiedDate") or {}).get("AfterLastModifiedDate")
        with self.lock:
            items = sorted(self.opportunities.values(), key=lambda o: (o["LastModifiedDate"], o["Id"]))
        if after is not None:
            # The model's timestamps travel as ISO 8601 text (or epoch seconds).
            bound = datetime.fromisoformat(after.replace("Z", "+00:00")) if isinstance(after, str) \
                else datetime.fromtimestamp(float(after), UTC)
            items = [o for o in items if o["LastModifiedDate"] > bound]
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or 20)
        page = items[start:start + size]
        out: dict[str, Any] = {"OpportunitySummaries": [
            {"Catalog": o["Catalog"], "Id": o["Id"], "LastModifiedDate": o["LastModifiedDate"]} for o in page]}
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return out

    def GetOpportunity(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return dict(self.opportunities[params["Identifier"]])

    def CreateOpportunity(self, params: dict[str, Any]) -> dict[str, Any]:
        """AWS's idempotency: a repeat of a ClientToken answers with the opportunity the first call made."""
        with self.lock:
            token = params["ClientToken"]
            if token not in self.tokens:
                ident = f"O{9_000_000_000 + len(self.tokens) + 1 + self.id_base}"
                at = datetime.now(UTC)
                life = {**params.get("LifeCycle", {}), "ReviewStatus": "Pending Submission"}
                self.opportunities[ident] = {
                    "Catalog": params["Catalog"], "Id": ident, "LastModifiedDate": at, "CreatedDate": at,
                    "RelatedEntityIdentifiers": {}, "Project": params.get("Project", {}),
                    "Customer": params.get("Customer", {}), "LifeCycle": life,
                    **{k: params[k] for k in ("Origin", "OpportunityType", "PartnerOpportunityIdentifier")
                       if k in params}}
                self.tokens[token] = ident
            ident = self.tokens[token]
            return {"Id": ident, "LastModifiedDate": self.opportunities[ident]["LastModifiedDate"]}

    def AssociateOpportunity(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            opp = self.opportunities[params["OpportunityIdentifier"]]
            solutions = opp["RelatedEntityIdentifiers"].setdefault(params["RelatedEntityType"], [])
            if params["RelatedEntityIdentifier"] not in solutions:
                solutions.append(params["RelatedEntityIdentifier"])
        return {}

    def StartEngagementFromOpportunityTask(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            opp = self.opportunities[params["Identifier"]]
            self.opportunities[params["Identifier"]] = {
                **opp, "LastModifiedDate": datetime.now(UTC),
                "LifeCycle": {**opp["LifeCycle"], "ReviewStatus": "Submitted"}}
        return {"TaskId": f"task-{params['ClientToken'][-12:]}", "TaskStatus": "COMPLETE",
                "OpportunityId": params["Identifier"], "StartTime": datetime.now(UTC)}

    def ListEngagementInvitations(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"EngagementInvitationSummaries": [dict(i) for i in self.invitations]}

    def RejectEngagementInvitation(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for i, inv in enumerate(self.invitations):
                if inv["Id"] == params["Identifier"]:
                    self.invitations[i] = {**inv, "Status": "REJECTED"}
        return {}

    def GetAwsOpportunitySummary(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Catalog": params["Catalog"], "RelatedOpportunityId": params["RelatedOpportunityIdentifier"],
                "InvolvementType": "Co-Sell"}

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                target = self.headers.get("X-Amz-Target", "")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = fake.answer(target.removeprefix(PREFIX), json.loads(body or b"{}"))
                data = json.dumps(_json(answer)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


def now() -> datetime:
    return datetime.now(UTC)
