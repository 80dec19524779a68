"""Secrets PartnerOps makes for itself: random, independent of each other, kept in files only their
owner can read (mode 0600, never visible with wider permissions, not even while being written)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def new_password() -> str:
    # URL-safe, since passwords travel inside NATS_URL and DATABASE_URL; 192 bits from the OS.
    return secrets.token_hex(24)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_or_create(path: Path, names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A random password for each of `names`, kept in `path` (JSON, 0600). Missing names get new
    ones; existing ones are kept, so restarts and upgrades do not change them."""
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if not found.get(n)]
    if missing or not path.exists():
        found.update({n: new_password() for n in missing})
        write_private(path, json.dumps(found, indent=2, sort_keys=True))
    return {n: found[n] for n in names}
