"""A `requests.Session` that reads the environment once per host.

With `trust_env`, requests looks up the proxy variables, `no_proxy`, the CA bundle variables
and ~/.netrc again on every request: a fifth of a PDF download's CPU on a busy worker. This
session asks a plain session once per (scheme, host) what the environment says, keeps the
answer, and trusts nothing else from the environment afterwards (no ~/.netrc: TusFacturas
takes its credentials in the body). A process started with other proxy settings sees them;
a change to the environment of a running process does not.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests


class EnvironmentOnceSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # the per-request lookups are what this class saves
        self._per_host: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def environment_for(self, url: str) -> Any:
        """What the environment says for `url`'s host: {"proxies": ..., "verify": ...}."""
        parts = urlsplit(url)
        host = (parts.scheme, parts.netloc)
        with self._lock:
            found = self._per_host.get(host)
        if found is None:
            with requests.Session() as plain:  # trust_env: requests' own reading
                found = dict(plain.merge_environment_settings(url, {}, None, None, None))
            with self._lock:
                self._per_host[host] = found
        return found

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """requests' own merge, with the environment's part taken from the cache."""
        env = self.environment_for(url.decode() if isinstance(url, bytes) else url or "")
        bundle = env["verify"]  # True, or the CA bundle a variable names
        if (verify is True or verify is None) and bundle is not True:
            verify = bundle
        proxies = {**env["proxies"], **(proxies or {})}  # the request's own win
        return super().merge_environment_settings(url, proxies, stream, verify, cert)
