"""The asynchronous, interrupt-driven host driver and the workload language.

``HostDriver`` drives an ``SdhciController`` through its registers the way Linux's
sdhci/mmc stack does (reference §8, Part B); ``parse_workload`` / ``run_workload`` run
texts like ``"init; read 0 8; write 100 4 pattern=0xA5; erase 200 16; read 100 4"``.
"""

from sdmodel.driver.card_info import CardInfo
from sdmodel.driver.errors import CardRemovedError, CardStatusError, DriverError
from sdmodel.driver.host import HostDriver, Request
from sdmodel.driver.patterns import Pattern, PatternKind
from sdmodel.driver.workload import (
    Erase,
    Init,
    Read,
    Step,
    StepResult,
    Wait,
    WorkloadResult,
    Write,
    parse_workload,
    run_workload,
)

__all__ = [
    "CardInfo",
    "CardRemovedError",
    "CardStatusError",
    "DriverError",
    "Erase",
    "HostDriver",
    "Init",
    "Pattern",
    "PatternKind",
    "Read",
    "Request",
    "Step",
    "StepResult",
    "Wait",
    "WorkloadResult",
    "Write",
    "parse_workload",
    "run_workload",
]
