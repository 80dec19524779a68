"""Which argon2 parameters hash new passwords: the strong ones everywhere but ENVIRONMENT=test; the same for
the dummy hash an unknown person's password is checked against."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters, profiles

from gateway import passwords

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch):
    for name in ("hasher", "_concurrency", "_slots"):  # configure() sets these module globals
        monkeypatch.setattr(passwords, name, getattr(passwords, name))


@pytest.mark.parametrize("environment", ["production", "development"])
async def test_outside_tests_new_passwords_get_rfc_9106_parameters(environment: str):
    passwords.configure(2, environment=environment)
    made = await passwords.hash_password("correct horse battery staple")
    assert extract_parameters(made) == profiles.RFC_9106_LOW_MEMORY
    assert await passwords.verify_password(made, "correct horse battery staple")


async def test_in_tests_hashes_are_cheap_and_strong_ones_still_verify():
    passwords.configure(2, environment="production")
    strong = await passwords.hash_password("correct horse battery staple")
    passwords.configure(2, environment="test")
    cheap = await passwords.hash_password("correct horse battery staple")
    assert extract_parameters(cheap) == profiles.CHEAPEST
    assert await passwords.verify_password(cheap, "correct horse battery staple")
    assert await passwords.verify_password(strong, "correct horse battery staple")
    assert not await passwords.verify_password(cheap, "correct horse battery stapler")


@pytest.mark.parametrize("environment", ["production", "test"])
async def test_an_unknown_person_is_checked_against_a_dummy_hash_of_the_configured_parameters(environment: str):
    # So an unknown email costs what a known one does; made at the first need, not when the module is imported.
    from gateway import auth

    passwords.configure(2, environment=environment)
    assert not await auth.check_password(None, "correct horse battery staple")
    dummy = await auth._dummy_hash()
    assert extract_parameters(dummy) == (profiles.CHEAPEST if environment == "test" else profiles.RFC_9106_LOW_MEMORY)
    assert await auth._dummy_hash() == dummy  # once per hasher
