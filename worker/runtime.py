"""Builds the running parts from the settings, once per process."""

from __future__ import annotations

import logging
import re
from functools import cached_property

import redis

from worker.archive import db
from worker.archive.keeper import PdfKeeper
from worker.archive.loop import KeeperLoop
from worker.archive.pdfs import PdfStore
from worker.archive.repository import Archive
from worker.archive.results import ArchivedResults
from worker.errors import ConfigError
from worker.settings import Settings
from worker.store.callbacks import Callbacks
from worker.store.durability import durability_warnings
from worker.store.keys import DownField, Keys
from worker.store.lanes import LaneStore
from worker.submit import Sender
from worker.tenants import Tenants, UnknownPdv
from worker.tenants_live import LiveTenants
from worker.tusfacturas.client import TusFacturasClient
from worker.webhooks.delivery import Deliverer

log = logging.getLogger("tfq.runtime")
# How the send path pauses a lane whose PDV the tenants file lacks (UnknownPdv's message).
UNKNOWN_PDV_PAUSE = re.compile(r"punto de venta (\d+) in the tenants file")


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.redis_url, socket_connect_timeout=5, health_check_interval=30
        )

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    @cached_property
    def store(self) -> LaneStore:
        return LaneStore(self.redis, self.keys)

    @cached_property
    def tenants(self) -> LiveTenants:
        """The tenants file in force, loaded on first use; long-running processes `watch` it."""
        if self.settings.tenants_file is None:
            raise ConfigError("TFQ_TENANTS_FILE is not set: the worker needs the tenants file")
        live = LiveTenants(self.settings.tenants_file)
        live.subscribe(self.resume_lanes_now_known)
        return live

    def resume_lanes_now_known(self, tenants: Tenants) -> list[str]:
        """Resume the lanes paused because their PDV was not in the tenants file, now that
        it is (every process with a send path does this after its own reload, so a lane a
        worker with the old file paused again is resumed once that worker has the new one)."""

        def now_known(cuit: str, reason: str) -> bool:
            found = UNKNOWN_PDV_PAUSE.search(reason)
            if found is None:
                return False
            try:
                tenants.pdv(cuit, int(found.group(1)))
            except UnknownPdv:
                return False
            return True

        resumed = self.store.resume_paused(now_known)
        if resumed:
            log.warning("lanes resumed: their PDV is in the tenants file", extra={"cuits": resumed})
        return resumed

    @cached_property
    def client(self) -> TusFacturasClient:
        return TusFacturasClient.from_settings(self.settings)

    @cached_property
    def callbacks(self) -> Callbacks:
        return Callbacks(
            self.store,
            self.settings.callback_visibility_seconds,
            self.settings.result_retention_seconds,
        )

    @cached_property
    def archive(self) -> Archive:
        """The SQL archive (its engine connects lazily: a database that is down does not
        stop a process from starting)."""
        return Archive(db.engine_for(self.settings.archive_database_url))

    @cached_property
    def archived_results(self) -> ArchivedResults:
        return ArchivedResults(self.archive, self.settings.public_url)

    @cached_property
    def pdf_store(self) -> PdfStore:
        return PdfStore(self.settings.pdf_store_url)

    def pdf_keeper(self) -> PdfKeeper:
        return PdfKeeper(self.store, self.pdf_store, self.client, self.tenants, self.settings)

    def keeper_loop(self) -> KeeperLoop:
        keeper = None

        def pdf_keeper() -> PdfKeeper:  # built on first use: it needs the tenants file
            nonlocal keeper
            keeper = keeper or self.pdf_keeper()
            return keeper

        return KeeperLoop(self.store, self.archive, pdf_keeper, self.settings)

    def deliverer(self) -> Deliverer:
        return Deliverer(self.callbacks, self.tenants, self.settings)

    def sender(self) -> Sender:
        return Sender(
            self.store,
            self.client,
            self.tenants,
            self.settings,
            lease_seconds=self.settings.lease_seconds,
        )

    def service_healthy(self) -> bool:
        """`estado_servicios/alertas` through the first PDV of the tenants file.

        Only AFIP-down windows are lifted early: a TusFacturas maintenance window says
        when it ends, and probing it would only be refused.
        """
        down = self.store.down()
        if "maintenance" in down.get(DownField.REASON, "").lower():
            return False
        tenants = self.tenants.current.tenants
        if not tenants:
            return False
        return self.client.estado_servicios(tenants[0].pdv[0]).ok

    def check_redis_durability(self) -> list[str]:
        """Warnings when Redis could lose or evict jobs: production wants AOF, noeviction
        and acknowledgements on disk (WAITAOF on Redis 7.2+, else appendfsync always)."""
        warnings = durability_warnings(
            self.redis, ack_from_memory=self.settings.ack_durability == "off"
        )
        for w in warnings:
            log.warning(w)
        return warnings
