"""Callback URLs that cannot be pointed inside (SSRF), checked at both ends.

The intake refuses a `callback_url` that could never be delivered (`callback_url_refusal`):
not http(s), with a user name or password, or reaching a loopback, private, link-local,
unspecified, multicast or reserved address in any spelling of it, or a name that resolves
to such an address. Delivery checks the URL again (`check_callback_url`) and then the
address it actually connected to, before a byte is sent (`PublicOnlyAdapter`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from worker.errors import FieldError, TfqError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# One part of a numeric IPv4 host as inet_aton (so getaddrinfo, curl and browsers) reads
# it: decimal, octal after a leading 0, hex after 0x. `0177.0.0.1`, `0x7f.1` and
# `2130706433` all mean 127.0.0.1.
_INET_ATON_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")
# How long the intake trusts a DNS answer: bulk intake resolves each host once, not once
# per envelope; delivery resolves afresh and checks the connected address anyway.
DNS_CACHE_SECONDS = 60.0
DNS_CACHE_HOSTS = 1024


class UnsafeCallbackURL(TfqError, ValueError):
    """The URL points at a private, loopback, link-local or otherwise internal address."""


def _internal(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return _internal(mapped)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _aton_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    return int(part, 8) if len(part) > 1 and part.startswith("0") else int(part)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS, in any spelling: IPv6, dotted IPv4, or
    inet_aton's shortened, decimal, octal and hex forms. None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.match(p) for p in parts):
        return None
    *head, last = [_aton_number(p) for p in parts]
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None  # not an address; getaddrinfo would not take it as one either
    value = last
    for i, n in enumerate(head):
        value += n << (24 - 8 * i)
    return ipaddress.IPv4Address(value)


def _resolve(host: str, port: int) -> tuple[str, ...]:
    """The addresses `host` resolves to now; () when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return ()
    return tuple(str(info[4][0]) for info in infos)


@lru_cache(maxsize=DNS_CACHE_HOSTS)
def _resolve_cached(host: str, port: int, period: int) -> tuple[str, ...]:
    return _resolve(host, port)  # `period` only ages the entry out


def _url_refusal(url: str, *, allow_private: bool, cached: bool) -> tuple[str, bool]:
    """Why `url` cannot be a callback ("" when it can) and whether its host resolves."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "is not a valid URL", True
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http or https URL with a host", True
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (sign callbacks instead)", True
    if allow_private:
        return "", True
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return "points at localhost", True
    literal = literal_address(host)
    if literal is not None:
        refusal = "points at an internal address" if _internal(literal) else ""
        return refusal, True
    if cached:
        addresses = _resolve_cached(host, port, int(time.monotonic() // DNS_CACHE_SECONDS))
    else:
        addresses = _resolve(host, port)
    if any(_internal(ipaddress.ip_address(a.split("%", 1)[0])) for a in addresses):
        return "its host resolves to an internal address", True
    return "", bool(addresses)


def callback_url_refusal(url: str, *, allow_private: bool) -> str:
    """Why the intake refuses `url` as a callback_url, or "" when it takes it.

    A name that does not resolve at all is taken: DNS may be down for a moment, or the
    name not published yet, and delivery retries for hours. A name that resolves to an
    internal address is refused, since delivery would refuse it (and dead-letter the
    invoice's callback). Answers, and so verdicts, are cached for DNS_CACHE_SECONDS: a
    bulk intake names the same few URLs again and again.
    """
    return _refusal_cached(url, allow_private, int(time.monotonic() // DNS_CACHE_SECONDS))


@lru_cache(maxsize=DNS_CACHE_HOSTS)
def _refusal_cached(url: str, allow_private: bool, period: int) -> str:
    refusal, _ = _url_refusal(url, allow_private=allow_private, cached=True)
    return refusal  # `period` only ages the entry out, as the DNS answer it rests on


def clear_caches() -> None:
    """Forget cached DNS answers and verdicts (tests that change what a name resolves to)."""
    _resolve_cached.cache_clear()
    _refusal_cached.cache_clear()


def callback_url_errors(url: object, *, allow_private: bool) -> list[FieldError]:
    """A validated envelope's `callback_url` refusal as the field errors every door gives."""
    if url is None:
        return []
    refusal = callback_url_refusal(str(url), allow_private=allow_private)
    return [FieldError("callback_url", refusal)] if refusal else []


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Delivery's check, resolving afresh: raises `UnsafeCallbackURL` for a URL that is
    not http(s), carries userinfo, reaches an internal address, or does not resolve."""
    refusal, resolves = _url_refusal(url, allow_private=allow_private, cached=False)
    if refusal:
        raise UnsafeCallbackURL(f"callback_url {refusal}")
    if not resolves:
        raise UnsafeCallbackURL("callback_url's host does not resolve")


class InternalPeerError(NewConnectionError):
    """The connection reached an internal address (DNS answered differently at connect time)."""


def _public_peer(conn: HTTPConnection, sock: socket.socket) -> socket.socket:
    """Check the address actually connected to, before a byte is sent: the URL check above
    resolves the name once, and a DNS answer that changes in between (rebinding) would
    otherwise carry the request inside."""
    peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
    if _internal(peer):
        sock.close()
        raise InternalPeerError(conn, "the receiver's address is internal")
    return sock


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _public_peer(self, super()._new_conn())


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _public_peer(self, super()._new_conn())


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """requests' adapter whose connections refuse internal peers."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }


def refused_internal_peer(exc: requests.RequestException) -> bool:
    """Whether `exc` is a PublicOnlyAdapter refusing an internal peer (not a network fault)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, InternalPeerError)
