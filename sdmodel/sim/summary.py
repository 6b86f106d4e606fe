"""The end-of-run summary of a simulation: what crossed the bus, what went wrong."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sdmodel.commands import command_name
from sdmodel.tokens import PS_PER_S, CommandToken, DataToken, FindingToken, SpiToken, Token
from sdmodel.trace import IrqEvent

__all__ = ["SimSummary"]


@dataclass
class SimSummary:
    commands: Counter[str] = field(default_factory=Counter)
    blocks_read: int = 0
    blocks_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    crc_errors: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    interrupts: Counter[str] = field(default_factory=Counter)  # status bit -> assertions
    irq_assertions: int = 0
    simulated_s: float = 0.0
    wall_s: float = 0.0
    workload_errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, items: Iterable[Token], *, simulated_ps: int, wall_s: float,
           workload_errors: Iterable[str] = ()) -> SimSummary:
        s = cls(simulated_s=simulated_ps / PS_PER_S, wall_s=wall_s,
                workload_errors=list(workload_errors))
        for item in items:
            if isinstance(item, CommandToken):
                s.commands[item.name] += 1
            elif isinstance(item, DataToken):
                if item.to_card:
                    s.blocks_written += 1
                    s.bytes_written += item.nbytes
                else:
                    s.blocks_read += 1
                    s.bytes_read += item.nbytes
            elif isinstance(item, SpiToken):
                s._add_spi(item)
            elif isinstance(item, FindingToken):
                s.findings[item.code] += 1
            elif isinstance(item, IrqEvent) and item.level:
                s.irq_assertions += 1
                s.interrupts.update(item.bits)
            if item.fields().get("crc_ok") is False:
                s.crc_errors += 1
        return s

    def _add_spi(self, item: SpiToken) -> None:
        """SPI runs: a command run names its command, a data run its direction and size."""
        info = item.info
        if item.what == "cmd" and "index" in info:
            self.commands[info.get("name") or command_name(info["index"])] += 1
        elif item.what == "data" and "nbytes" in info:
            if info.get("dir") == "write":
                self.blocks_written += 1
                self.bytes_written += info["nbytes"]
            else:
                self.blocks_read += 1
                self.bytes_read += info["nbytes"]

    @property
    def errors(self) -> int:
        return sum(self.findings.values()) + len(self.workload_errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "summary",
            "commands": dict(self.commands),
            "blocks_read": self.blocks_read,
            "blocks_written": self.blocks_written,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "crc_errors": self.crc_errors,
            "findings": dict(self.findings),
            "interrupts": dict(self.interrupts),
            "irq_assertions": self.irq_assertions,
            "simulated_s": self.simulated_s,
            "wall_s": self.wall_s,
            "workload_errors": self.workload_errors,
        }

    def table(self) -> str:
        rows: list[tuple[str, str]] = [
            ("commands", f"{sum(self.commands.values())}"),
            *((f"  {name}", str(n)) for name, n in self.commands.items()),
            ("blocks read", f"{self.blocks_read} ({self.bytes_read} bytes)"),
            ("blocks written", f"{self.blocks_written} ({self.bytes_written} bytes)"),
            ("CRC errors", str(self.crc_errors)),
            ("findings", str(sum(self.findings.values()))),
            *((f"  {code}", str(n)) for code, n in sorted(self.findings.items())),
            ("interrupts", str(self.irq_assertions)),
            *((f"  {bit}", str(n)) for bit, n in sorted(self.interrupts.items())),
            ("workload errors", str(len(self.workload_errors))),
            *((f"  {e}", "") for e in self.workload_errors),
            ("simulated time", f"{self.simulated_s * 1e3:.3f} ms"),
            ("wall time", f"{self.wall_s:.3f} s"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}".rstrip() for name, value in rows)
