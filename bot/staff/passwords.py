"""Staff passwords: argon2id hashes, the length rule, and generated initial passwords.

Hashing takes tens of milliseconds and memory on purpose, so it runs in a worker thread and
never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256  # hashing cost grows with length: a bound keeps a login from being a DoS
# No 0/O, 1/l/I: initial passwords are read aloud or copied from paper.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@cache
def hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


def password_problem(password: str) -> str | None:
    """Why this password is not acceptable (a Japanese sentence), or None when it is."""
    if len(password) < MIN_LENGTH:
        return f"パスワードは{MIN_LENGTH}文字以上にしてください。"
    if len(password) > MAX_LENGTH:
        return f"パスワードは{MAX_LENGTH}文字以内にしてください。"
    if not password.strip():
        return "空白だけのパスワードは使えません。"
    return None


def generate_password() -> str:
    """A random initial password: 4 groups of 5 characters (about 117 bits)."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(4))
    return "-".join(groups)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher().hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


@cache
def dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so timing does not tell."""
    return hasher().hash(secrets.token_urlsafe(16))
