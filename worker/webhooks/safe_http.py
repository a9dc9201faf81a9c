"""Outbound HTTP that cannot be pointed inside (SSRF): callback URLs are checked before
sending, and the address actually connected to is checked again before a byte is sent."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from worker.errors import TfqError


class UnsafeCallbackURL(TfqError, ValueError):
    """The URL points at a private, loopback, link-local or otherwise internal address."""


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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


def check_callback_url(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Refuse URLs that are not http(s) or that reach internal addresses (also via DNS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallbackURL("callback_url must be an http or https URL with a host")
    if allow_private:
        return
    host = parts.hostname
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        raise UnsafeCallbackURL("callback_url points at localhost")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if _internal(literal):
            raise UnsafeCallbackURL("callback_url points at an internal address")
        return
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise UnsafeCallbackURL("callback_url's host does not resolve") from None
    for info in infos:
        if _internal(ipaddress.ip_address(info[4][0])):
            raise UnsafeCallbackURL("callback_url's host resolves to an internal address")


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
