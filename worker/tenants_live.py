"""The tenants file in force in a running process, re-read when it changes.

`LiveTenants` holds one immutable `Tenants` and swaps it for a newer one when the file
changes (a watcher thread compares its inode, size and mtime once a second) or when asked
(`request_reload`, what a SIGHUP handler calls). A new file is validated whole first: a bad
one leaves the old one in force, is logged once with its reasons, and shows in the metrics.
Every consumer asks the holder at use time, so a CUIT joins or rotates its credentials
with no restart. The log's secret filter learns a file's secrets before they can be used.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from worker.errors import FieldError
from worker.logs import SECRET_FILTER
from worker.metrics import TENANTS_FILE_VALID, TENANTS_RELOADS
from worker.tenants import Pacing, Pdv, Tenant, Tenants, TenantsFileError

log = logging.getLogger("tfq.tenants")

POLL_SECONDS = 1.0
# A file's identity: a rename over it changes the inode, an edit in place the size or mtime.
Stamp = tuple[int, int, int]


class TenantLookup(Protocol):
    """What the send path, the callback deliverer and the PDF keeper ask of the tenants."""

    def tenant(self, cuit: str) -> Tenant | None: ...

    def pdv(self, cuit: str, punto_venta: int) -> Pdv: ...

    def gap_seconds(self, cuit: str, default: float) -> float: ...

    def pacing(self, cuit: str, punto_venta: int) -> Pacing: ...


# A file caught between truncation and write reads as empty, valid TOML: never take it.
EMPTIED = FieldError("", "lists no [[tenant]] and no [[client]] (half-written?)")


def _empty(tenants: Tenants) -> bool:
    return not tenants.tenants and not tenants.intake_callers


def _stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class LiveTenants:
    """The current `Tenants` of a file (loaded on first use) and its reloads."""

    def __init__(self, path: Path | str | None, tenants: Tenants | None = None):
        self.path = Path(path) if path is not None else None
        self._tenants = tenants
        self._stamp: Stamp | None = None
        self._lock = threading.Lock()  # one load at a time; readers never wait
        self._wake = threading.Event()
        self._listeners: list[Callable[[Tenants], object]] = []
        self._watcher: threading.Thread | None = None

    @classmethod
    def fixed(cls, tenants: Tenants) -> LiveTenants:
        """A holder of `tenants` with no file behind it (tests, embedded apps)."""
        SECRET_FILTER.add(tenants.all_secrets())
        return cls(None, tenants)

    def __repr__(self) -> str:
        return f"LiveTenants({self.path}, {self._tenants!r})"

    @property
    def current(self) -> Tenants:
        """The tenants in force; the first call loads the file (TenantsFileError if bad)."""
        tenants = self._tenants
        if tenants is not None:
            return tenants
        with self._lock:
            if self._tenants is None:
                self._swap(self._load())
            assert self._tenants is not None
            return self._tenants

    # The lookups consumers make, each on the tenants in force at that moment.
    def tenant(self, cuit: str) -> Tenant | None:
        return self.current.tenant(cuit)

    def pdv(self, cuit: str, punto_venta: int) -> Pdv:
        return self.current.pdv(cuit, punto_venta)

    def gap_seconds(self, cuit: str, default: float) -> float:
        return self.current.gap_seconds(cuit, default)

    def pacing(self, cuit: str, punto_venta: int) -> Pacing:
        return self.current.pacing(cuit, punto_venta)

    def subscribe(self, listener: Callable[[Tenants], object]) -> None:
        """Call `listener` with the new tenants after each successful reload."""
        self._listeners.append(listener)

    def reload(self, *, force: bool = False) -> bool | None:
        """Re-read the file if it changed (or `force`): True when a new one is in force,
        False when it was refused (the old one stays), None when there was nothing to do."""
        if self.path is None:
            return None
        with self._lock:
            stamp = _stamp(self.path)
            if not force and (self._tenants is None or stamp == self._stamp):
                return None
            try:
                tenants = self._load()
                if self._tenants is not None and _empty(tenants) and not _empty(self._tenants):
                    raise TenantsFileError(self.path, [EMPTIED])
            except TenantsFileError as exc:
                self._stamp = stamp  # report a bad file once, not every second
                TENANTS_FILE_VALID.set(0)
                TENANTS_RELOADS.labels("invalid").inc()
                # The reasons name fields, lines and columns, never a value.
                log.error(
                    "tenants file %s refused, the previous one stays in force: %s",
                    exc.path,
                    "; ".join(str(e) for e in exc.errors),
                )
                return False
            self._swap(tenants)
            TENANTS_RELOADS.labels("ok").inc()
        log.warning("tenants file %s reloaded: %r", self.path, tenants)
        for listener in self._listeners:
            try:
                listener(tenants)
            except Exception:
                log.exception("after reloading the tenants file")
        return True

    def _load(self) -> Tenants:
        assert self.path is not None
        stamp = _stamp(self.path)
        tenants = Tenants.load(self.path)
        self._stamp = stamp
        return tenants

    def _swap(self, tenants: Tenants) -> None:
        # Secrets first: a log line of a call with the new credentials is scrubbed too.
        # Old secrets stay in the filter, for late lines of calls made with them.
        SECRET_FILTER.add(tenants.all_secrets())
        self._tenants = tenants
        TENANTS_FILE_VALID.set(1)

    def request_reload(self) -> None:
        """Re-read the file soon, changed or not (safe to call from a signal handler)."""
        self._wake.set()

    def watch(
        self, poll_seconds: float = POLL_SECONDS, stop: threading.Event | None = None
    ) -> None:
        """Start (once) a daemon thread that reloads when the file changes or is asked to,
        until `stop` is set (by default it lives as long as the process)."""
        if self.path is None or self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch,
            args=(poll_seconds, stop or threading.Event()),
            name="tfq-tenants",
            daemon=True,
        )
        self._watcher.start()

    def _watch(self, poll_seconds: float, stop: threading.Event) -> None:
        while not stop.is_set():
            asked = self._wake.wait(poll_seconds)
            self._wake.clear()
            try:
                self.reload(force=asked)
            except Exception:
                log.exception("reloading the tenants file failed")

    def reload_on_sighup(self) -> None:
        """SIGHUP asks for a reload (main thread only; where Celery or uvicorn own SIGHUP
        for their restarts, the watcher alone notices the change)."""
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
