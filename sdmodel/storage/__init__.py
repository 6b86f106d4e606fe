"""Asynchronous backing store for disk images (design.md, "Asynchronous storage").

    storage = Storage.open("card.img", StorageOptions(durable=True))
    storage.faults.latency = (0.0, 0.5)
    data = await storage.read(lba, count)
"""

from sdmodel.storage.errors import StorageError, StorageErrorKind
from sdmodel.storage.faults import FaultHit, FaultInjector, FaultKind, Latency, LbaRange
from sdmodel.storage.specs import (
    DiskFullFault,
    EioFault,
    FaultSpec,
    HangFault,
    ShortReadFault,
    parse_fault_spec,
    parse_latency_spec,
    parse_size,
)
from sdmodel.storage.store import CLOSE_TIMEOUT_S, Storage, StorageOptions

__all__ = [
    "CLOSE_TIMEOUT_S",
    "DiskFullFault",
    "EioFault",
    "FaultHit",
    "FaultInjector",
    "FaultKind",
    "FaultSpec",
    "HangFault",
    "Latency",
    "LbaRange",
    "ShortReadFault",
    "Storage",
    "StorageError",
    "StorageErrorKind",
    "StorageOptions",
    "parse_fault_spec",
    "parse_latency_spec",
    "parse_size",
]
