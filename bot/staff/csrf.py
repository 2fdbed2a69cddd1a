"""CSRF protection: a synchronizer token per session, and a signed token for the login form.

Every POST/PUT/PATCH/DELETE under `/admin` must carry the session's token (form field
`csrf_token` or header `X-CSRF-Token`); so must the JSON API when it is called with the session
cookie instead of a key. The login form, before there is a session, carries a token bound to a
short-lived cookie by an HMAC with the session secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "fb_login"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def matches(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def login_token(secret: str, cookie_value: str) -> str:
    """The login form's token for this browser's login cookie."""
    mac = hmac.new(secret.encode(), b"login-csrf:" + cookie_value.encode(), hashlib.sha256)
    return mac.hexdigest()


def login_token_ok(secret: str, cookie_value: str | None, presented: str | None) -> bool:
    if not cookie_value or not presented:
        return False
    return matches(login_token(secret, cookie_value), presented)
