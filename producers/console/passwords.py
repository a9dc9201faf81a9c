"""Operators' passwords: stored only as scrypt hashes (RFC 7914, from the standard
library), in the form `scrypt$n$r$p$salt$hash` (salt and hash base64), and checked in
constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP's scrypt minimum (N=2^17, r=8, p=1) costs 128 MiB and ~0.3 s a check: an
# operator logs in rarely, a guesser often.
N, R, P = 2**17, 8, 1
_MAXMEM = 256 * 1024 * 1024
MIN_LENGTH = 12


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """What the tenants file stores for an operator's password."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, n, r, p)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, MemoryError):
        return False
