"""Passwords: argon2 hashing off the event loop with a concurrency limit, and which passwords are
too weak to accept.

An argon2 hash costs tens of milliseconds of CPU on purpose. On the event loop that stalls every
other request for as long; a burst of sign-in attempts would stall the gateway. So hashing runs in
worker threads, at most GATEWAY_PASSWORD_HASH_CONCURRENCY at once; further attempts wait for a slot
while everything else is served."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 200

# argon2's recommended parameters (RFC 9106, low memory: 64 MiB, 3 passes), ~0.3 s on a 2-core machine.
STRONG = PasswordHasher()
# For ENVIRONMENT=test only: the test suite creates and signs in people in every module, and at the strong
# parameters that hashing was a tenth of its run. A hash carries its own parameters, so verifying is as
# cheap or as costly as the hash was made, whatever hashes new passwords now.
CHEAPEST = PasswordHasher.from_parameters(profiles.CHEAPEST)

hasher = STRONG
_concurrency = 2
_slots: asyncio.Semaphore | None = None
_T = TypeVar("_T")


def configure(concurrency: int, *, environment: str = "production") -> None:
    global _concurrency, _slots, hasher
    _concurrency, _slots = concurrency, None
    hasher = CHEAPEST if environment == "test" else STRONG


async def _in_thread(fn: Callable[..., _T], *args: object) -> _T:
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(_concurrency)
    async with _slots:
        return await asyncio.to_thread(fn, *args)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await _in_thread(hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    return await _in_thread(_verify, password_hash, password)


# The words behind the passwords every breach list starts with. A password that is one of them once
# the digits and symbols around it are taken off ("Password123!", "qwerty2026", "!!letmein!!") is
# refused, as is one made of a single repeated character or a keyboard run.
COMMON_WORDS = frozenset("""
password passw0rd p4ssw0rd passwort motdepasse contrasena qwerty qwertyuiop qwertz azerty asdfgh
asdfghjkl zxcvbnm letmein welcome iloveyou admin administrator root changeme default secret
monkey dragon football baseball basketball soccer hockey sunshine princess trustno master
shadow superman batman starwars pokemon michael jennifer jordan hunter harley ranger buster
charlie thomas tigger summer winter spring autumn freedom whatever login access hello
partnerops partner partners welcome abc abcdef abcdefgh test testing guest user
""".split())
COMMON_PASSWORDS = frozenset("""
1234567890 0123456789 12345678910 1q2w3e4r5t 1qaz2wsx3edc qazwsxedc qwerty123 qwerty1234
password1 password12 password123 password1234 iloveyou123 letmein123 welcome123 abc1234567
zaq12wsxcde 987654321 9876543210 1111111111 0000000000 1234512345 1122334455 5555555555
""".split())
_RUNS = ("0123456789", "9876543210", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def weakness(password: str, email: str | None = None) -> str | None:
    """Why the password is refused, or None. `email` is the account's: a password holding it (or
    the part before the @) is refused."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
    if lowered in COMMON_PASSWORDS or core in COMMON_WORDS or core.replace(" ", "") in COMMON_WORDS:
        return "is one of the most common passwords; choose a less guessable one"
    if len(set(lowered)) <= 2:
        return "repeats the same characters; choose a less guessable one"
    if any(lowered in run for run in _RUNS):
        return "is a run of keys or digits; choose a less guessable one"
    if email:
        local = email.lower().split("@", 1)[0]
        if email.lower() in lowered or (len(local) >= 3 and local in lowered):
            return "must not contain your email address"
    return None
