"""Every status a route can answer is declared in the OpenAPI document, derived once from what the
route is rather than written by hand on each:

- it depends on `require(...)`           → 401 (no or unknown credentials), 403 (role, scope or CSRF);
- it takes parameters or a body          → 422 (a bad field, named);
- it has a path parameter or changes something → 404 (nothing with that id, in the path or the body);
- it changes something (POST/PUT/PATCH/DELETE) → 400 (a body that cannot be parsed), 409 (changed
  meanwhile, or conflicts), 413 (body too large);
- it is an API route (NATS and Postgres behind it) → 503 with Retry-After (the platform is restarting).

The error bodies are `gateway.errors.Problem`. Declarations a route makes itself are kept.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema

from gateway.errors import RETRY_AFTER_SECONDS, Problem

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

DESCRIPTIONS = {
    400: "The body cannot be parsed (not JSON, or not UTF-8).",
    401: "Not signed in, or an unknown or revoked API token.",
    403: "The role or the token's scope does not allow this, or the CSRF token is missing or wrong.",
    404: "Nothing with that id (in the path, or one the body refers to).",
    409: "Changed by someone else meanwhile, or conflicts with what is stored.",
    413: "The request body is too large.",
    422: "A field is invalid; the error names it.",
    503: f"The platform is unavailable for a moment (restarting); retry after {RETRY_AFTER_SECONDS} s.",
}


def _requires_auth(dependant: Dependant) -> bool:
    return any(hasattr(d.call, "required_role") or _requires_auth(d) for d in dependant.dependencies)


def _has_parameters(dependant: Dependant) -> bool:
    return bool(dependant.path_params or dependant.query_params or dependant.header_params
                or dependant.cookie_params or dependant.body_params) or any(
        _has_parameters(d) for d in dependant.dependencies)


def statuses(route: APIRoute, path: str) -> set[int]:
    """The error statuses the route can answer beyond what it declares itself."""
    found: set[int] = set()
    if _requires_auth(route.dependant):
        found |= {401, 403}
    if _has_parameters(route.dependant) or route.methods & CHANGES:
        found.add(422)
    if route.dependant.path_params or route.methods & CHANGES:
        found.add(404)
    if route.methods & CHANGES:
        found |= {400, 409, 413}
    if path.startswith("/api/") or found & {401, 403}:
        found.add(503)
    return found


def _response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": DESCRIPTIONS[status],
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if status == 503:
        response["headers"] = {"Retry-After": {"description": "seconds to wait before trying again",
                                               "schema": {"type": "integer"}}}
    return response


def declare_responses(app: FastAPI) -> None:
    """Make app.openapi() add the derived statuses to every operation (those it declares itself stay)."""
    generate = app.openapi
    done: set[int] = set()

    def openapi() -> dict[str, Any]:
        doc = generate()  # FastAPI's own, cached until the routes change
        if id(doc) in done:
            return doc
        _, defs = models_json_schema([(Problem, "serialization")], ref_template="#/components/schemas/{model}")
        doc.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        for ctx in iter_route_contexts(app.routes):
            route = ctx.original_route
            if not isinstance(route, APIRoute) or ctx.path not in doc.get("paths", {}):
                continue
            for method in ctx.methods or ():
                operation = doc["paths"][ctx.path].get(method.lower())
                if operation is None:
                    continue
                for status in sorted(statuses(route, ctx.path)):
                    operation["responses"].setdefault(str(status), _response(status))
        done.add(id(doc))
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
