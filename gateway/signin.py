"""One sign-in flow for the browser form (gateway/web/session.py) and the JSON API (`POST /api/session`):
the throttle, the password check and the session, and the cookies a successful sign-in sets."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from contracts.fields import single_line
from gateway import auth, signin_throttle
from gateway.models import User
from gateway.state import sessions


@dataclass(frozen=True)
class SignIn:
    """What an attempt came to: a user and a session cookie value, or `wait` seconds, or neither
    (a wrong email or password, recorded as a failure)."""

    user: User | None = None
    token: str | None = None
    csrf_token: str | None = None
    wait: int = 0


def secure(request: Request) -> bool:
    return request.app.state.settings.environment == "production"


async def attempt(request: Request, email: str, password: str) -> SignIn:
    try:
        single_line(email)
    except ValueError:
        # No account has such an address; and Postgres refuses NUL in text, so it is never looked up.
        return SignIn()
    settings = request.app.state.settings
    client = signin_throttle.client_key(request.client.host if request.client else None)
    async with sessions(request)() as session, session.begin():
        user = await auth.find_user(session, email)
        known = signin_throttle.is_known_device(settings.secret_key,
                                                request.cookies.get(signin_throttle.DEVICE_COOKIE),
                                                user.id if user else None)
        wait = await signin_throttle.wait_seconds(session, email, client, known_device=known)
        if wait:
            return SignIn(wait=wait)
    # The password hash runs in a worker thread, outside any transaction.
    ok = await auth.check_password(user, password)
    async with sessions(request)() as session, session.begin():
        if not ok or user is None:
            signin_throttle.record_failure(session, email, client)
            return SignIn()
        token, csrf = await auth.open_session(session, user)
        return SignIn(user=user, token=token, csrf_token=csrf)


def set_cookies(request: Request, response: Response, result: SignIn) -> None:
    assert result.user is not None and result.token is not None
    settings = request.app.state.settings
    response.set_cookie(auth.SESSION_COOKIE, result.token, httponly=True, samesite="lax", secure=secure(request),
                        max_age=int(auth.SESSION_LIFETIME.total_seconds()))
    # Lets this browser skip the email's sign-in wait next time (see gateway/signin_throttle.py).
    response.set_cookie(signin_throttle.DEVICE_COOKIE,
                        signin_throttle.device_cookie(settings.secret_key, result.user.id),
                        httponly=True, samesite="strict", secure=secure(request),
                        max_age=int(signin_throttle.DEVICE_LIFETIME.total_seconds()))
