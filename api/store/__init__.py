"""Storage: the :class:`~api.store.protocol.Store` contract and its backends."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from api.delivery.routing import Routing
from api.store.protocol import Store
from api.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from api.settings import Settings

BACKENDS = ("sqlite",)


def routing(settings: Settings) -> Routing:
    """How the settings route alerts to receivers."""
    return Routing(
        receivers=settings.receivers,
        group_by=settings.group_by,
        group_window_us=settings.group_window_seconds * 1_000_000,
        max_age_us=settings.delivery_max_age_seconds * 1_000_000,
    )


def open_store(settings: Settings) -> Store:
    """Open the store the settings name."""
    if settings.store == "sqlite":
        return SqliteStore.open(
            settings.db_path,
            dedupe_window=timedelta(seconds=settings.alert_dedupe_seconds),
            routing=routing(settings),
        )
    raise ValueError(f"unknown store {settings.store!r}")  # settings validation prevents this


__all__ = ["BACKENDS", "SqliteStore", "Store", "open_store"]
