"""Reads for the console's operations pages (callbacks and health) that the other stores
do not offer: when deliveries were dead-lettered, and the accounts' next call slots."""

from __future__ import annotations

from collections.abc import Iterable

from worker.store.keys import AccountField
from worker.store.lanes import LaneStore
from worker.store.scripts import text


def dead_lettered_at(store: LaneStore, delivery_ids: Iterable[str]) -> dict[str, float]:
    """When each of these deliveries was dead-lettered (epoch s: its score in the dead-letter
    set); one not dead-lettered (anymore) is left out."""
    ids = list(delivery_ids)
    if not ids:
        return {}
    pipe = store.r.pipeline(transaction=False)
    for delivery_id in ids:
        pipe.zscore(store.keys.callbacks_dead, delivery_id)
    return {i: float(s) for i, s in zip(ids, pipe.execute(), strict=True) if s is not None}


def account_next_slots(store: LaneStore, accounts: Iterable[str]) -> dict[str, float | None]:
    """Each account's next free call slot (epoch s, the `next` field of its pacing hash);
    None when it has made no call yet."""
    names = list(accounts)
    if not names:
        return {}
    pipe = store.r.pipeline(transaction=False)
    for name in names:
        pipe.hget(store.keys.account(name), AccountField.NEXT)
    slots: dict[str, float | None] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        try:
            slots[name] = float(text(raw)) if raw is not None else None
        except ValueError:
            slots[name] = None
    return slots
