"""Every route of the gateway app, found from the app itself (so a route added later is covered by
the tables that use this without touching them), with the `require(...)` each declares and a way to
fill its path parameters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

# Meant to be reachable without signing in.
# /reset/{secret}: the single-use link itself is the credential (tests/gateway/test_accounts.py).
# /calendar/{token}.ics: the feed's secret address is its credential, revocable (tests/week/test_api.py).
PUBLIC = {"/signin", "/healthz", "/livez", "/docs", "/redoc", "/openapi.json", "/asyncapi.json", "/reset/{secret}",
          "/calendar/{token}.ics"}
PUBLIC_PREFIXES = ("/static",)
# Public for one method only: the JSON sign-in (its DELETE, signing out, needs a session).
PUBLIC_ROUTES = {"POST /api/session"}


def is_public(path: str, method: str | None = None) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES) or f"{method} {path}" in PUBLIC_ROUTES


def requirement(route: APIRoute) -> Any:
    """The `require(...)` dependency of a route, found anywhere in its dependency tree."""
    todo = list(route.dependant.dependencies)
    while todo:
        dep = todo.pop()
        if hasattr(dep.call, "required_role"):
            return dep.call
        todo.extend(dep.dependencies)
    return None


def all_routes() -> list[tuple[str, str, APIRoute]]:
    """(method, path template, route) of every API route and page, HEAD left out."""
    from gateway.app import create_app

    app = create_app()
    found = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(ctx.methods or ()):
            if method != "HEAD":
                found.append((method, ctx.path, route))
    return found


def fill_path(path: str, route: APIRoute, known: Mapping[str, str] | None = None,
              default: Callable[[str], str] | None = None) -> str:
    """The path with each parameter filled: from `known` by the parameter's name, else a value of the
    parameter's type (1 for ints, a random UUID for UUIDs, "x" otherwise)."""

    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if known and name in known:
            return known[name]
        if default is not None:
            return default(name)
        field = next((p for p in route.dependant.path_params if p.name == name), None)
        annotation = getattr(field, "type_", None) or getattr(getattr(field, "field_info", None), "annotation", None)
        if annotation is int:
            return "1"
        if annotation is uuid.UUID:
            return str(uuid.uuid4())
        return "x"

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)
