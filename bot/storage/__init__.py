"""Durable state of the App: webhook deliveries as a job queue, and its bookkeeping tables.

`Storage` (SQLAlchemy) and the in-process `DeliveryWriter` load on first use: the intake
process stores deliveries through `ProcessDeliveryWriter` and never needs SQLAlchemy, which
would add about 17 MB to the memory of the process that answers GitHub.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bot.storage.models import (
    AuditEntry,
    AuditRecord,
    CheckRunRecord,
    DeliveryStatus,
    Installation,
    InstallationChange,
    NewDelivery,
    PerfBaselineRecord,
    StorageError,
    StoredDelivery,
    Waiver,
    utcnow,
)
from bot.storage.writer import (
    DeliveryWriter,
    ProcessDeliveryWriter,
    WritesDeliveries,
    create_delivery_writer,
)

if TYPE_CHECKING:
    from bot.storage.store import Storage

#: Names served by a module imported only when one of them is first asked for.
_LAZY = {"Storage": "bot.storage.store"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuditEntry",
    "AuditRecord",
    "CheckRunRecord",
    "DeliveryStatus",
    "DeliveryWriter",
    "Installation",
    "InstallationChange",
    "NewDelivery",
    "PerfBaselineRecord",
    "ProcessDeliveryWriter",
    "Storage",
    "StorageError",
    "StoredDelivery",
    "Waiver",
    "WritesDeliveries",
    "create_delivery_writer",
    "utcnow",
]
