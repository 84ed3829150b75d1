"""Durable state of the App: webhook deliveries as a job queue, and its bookkeeping tables."""

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
)
from bot.storage.store import Storage, utcnow
from bot.storage.writer import (
    DeliveryWriter,
    ProcessDeliveryWriter,
    WritesDeliveries,
    create_delivery_writer,
)

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
