"""Every command the gateway sends names who asked, and that name comes from the identity the gateway
verified (the signed-in person or API token: `principal`), never from what the client sent (issue 9).

Read from the source: every construction of a contracts Command in the modules that serve HTTP
passes `actor=`, the expression mentions the principal or is a variable `actor` that the enclosing
function got as a parameter or assigned from the principal, and nothing of the request (body, form,
query, headers) goes into it. Fixed operator names ("cli", the demo's people) are allowed only in
the modules the HTTP application never imports (the CLI's seed, migrations of data, demo data).
No request body of the API has an `actor` field at all."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import contracts
from contracts.base import Command

ROOT = Path(__file__).resolve().parents[2]
# What a client controls; none of it may reach an actor.
REQUEST_PARTS = ("body", "form", "query", "payload", "headers", "cookies", "path_params", "query_params", "json")


# Identities verified by something other than a session or token, each for its reason.
OTHER_CREDENTIALS = {
    # A password-reset link is the credential: whoever holds it acts as the user it was issued for.
    ("gateway/routes/access.py", "user.email"),
}


def command_names() -> set[str]:
    names = set()
    for info in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"contracts.{info.name}")
        names |= {n for n, o in vars(module).items()
                  if inspect.isclass(o) and issubclass(o, Command) and o is not Command}
    return names


def served_modules() -> set[str]:
    """The gateway modules the HTTP application imports (in a fresh interpreter)."""
    code = "import gateway.app, sys, json; print(json.dumps(sorted(m for m in sys.modules if m.startswith('gateway'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _from_principal(expr: ast.AST, functions: list[ast.AST]) -> bool:
    text = ast.unparse(expr)
    if any(f".{part}" in text or text.startswith(part) for part in REQUEST_PARTS):
        return False
    if "principal" in text:
        return True
    return isinstance(expr, ast.Name) and any(_bound_to_principal(expr.id, f) for f in functions)


def _bound_to_principal(variable: str, function: ast.AST) -> bool:
    """`variable` is a parameter of `function` (the calls that pass `actor=` are checked like commands)
    or a local assigned from the principal."""
    args = function.args  # type: ignore[attr-defined]
    if variable in {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}:
        return True
    for node in ast.walk(function):
        for target in getattr(node, "targets", []):
            if isinstance(target, ast.Name):
                pairs = [(target, node.value)]  # type: ignore[attr-defined]
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):  # type: ignore[attr-defined]
                pairs = list(zip(target.elts, node.value.elts, strict=False))  # type: ignore[attr-defined]
            else:
                continue
            if any(isinstance(n, ast.Name) and n.id == variable and "principal" in ast.unparse(v) for n, v in pairs):
                return True
    return False


def problems() -> list[str]:
    commands, served, found = command_names(), served_modules(), []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

        def enclosing(node: ast.AST, fns: list[ast.AST] = functions) -> list[ast.AST]:
            """The functions around `node`, innermost first (a closure sees its outer function's names)."""
            inside = [f for f in fns if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]  # type: ignore[attr-defined]
            return sorted(inside, key=lambda f: -f.lineno)  # type: ignore[attr-defined]

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name not in commands:
                # A helper handed an actor by keyword gets it from the principal too.
                actor = next((k.value for k in node.keywords if k.arg == "actor"), None)
                if module in served and actor is not None and not _from_principal(actor, enclosing(node)) \
                        and (str(path.relative_to(ROOT)), ast.unparse(actor)) not in OTHER_CREDENTIALS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}: actor={ast.unparse(actor)}"
                                 " is not the verified principal")
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            keywords = {k.arg: k.value for k in node.keywords}
            if "actor" not in keywords:
                # A command built only to validate input, never sent, is fine without one; so is one the
                # operator's tools send (the CLI's seed and data migrations, which HTTP never reaches).
                if module in served and not _only_validates(node, tree):
                    found.append(f"{where}: no actor")
                continue
            actor = keywords["actor"]
            if module in served:
                if not _from_principal(actor, enclosing(node)):
                    found.append(f"{where}: actor={ast.unparse(actor)} is not the verified principal")
            elif any(part in ast.unparse(actor) for part in REQUEST_PARTS):
                found.append(f"{where}: actor={ast.unparse(actor)} comes from input")
    return found


def _only_validates(call: ast.Call, tree: ast.AST) -> bool:
    """The call is an expression statement of its own (its result unused, so never sent)."""
    return any(isinstance(n, ast.Expr) and n.value is call for n in ast.walk(tree))


def test_every_command_the_gateway_sends_carries_the_verified_principal_as_actor() -> None:
    assert problems() == []


def test_the_check_sees_a_command_without_an_actor_or_with_one_from_the_request(tmp_path: Path,
                                                                                monkeypatch) -> None:
    bad = ROOT / "gateway" / "_actor_probe.py"
    bad.write_text(
        "from contracts import commissions as cc\n"
        "async def approve(request, principal, body):\n"
        "    await send(cc.ApproveEntries(entry_ids=[1]))\n"
        "    await send(cc.ApproveEntries(entry_ids=[1], actor=body.actor))\n"
        "    who = request.headers['x-user']\n"
        "    await send(cc.ApproveEntries(entry_ids=[1], actor=who))\n"
        "    await send(cc.ApproveEntries(entry_ids=[1], actor=principal.name))\n"
    )
    try:
        monkeypatch.setattr(sys.modules[__name__], "served_modules", lambda: {"gateway._actor_probe"})
        found = [p for p in problems() if "_actor_probe" in p]
    finally:
        bad.unlink()
    assert [p.split(" ", 1)[1] for p in found] == [
        "ApproveEntries: no actor",
        "ApproveEntries: actor=body.actor is not the verified principal",
        "ApproveEntries: actor=who is not the verified principal",
    ]


def test_no_request_body_of_the_api_has_an_actor_field() -> None:
    from gateway.app import create_app
    from runtime.settings import Settings

    spec = create_app(Settings(environment="test")).openapi()
    bodies = [op["requestBody"] for path in spec["paths"].values() for op in path.values()
              if isinstance(op, dict) and "requestBody" in op]
    refs = {c["schema"].get("$ref", "").rsplit("/", 1)[-1] for b in bodies for c in b.get("content", {}).values()}
    schemas = spec["components"]["schemas"]
    assert refs and [r for r in refs if r in schemas and "actor" in schemas[r].get("properties", {})] == []
