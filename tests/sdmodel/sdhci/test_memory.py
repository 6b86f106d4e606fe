"""The simulated host RAM that SDMA uses (reference B.3 rule 11)."""

from __future__ import annotations

import pytest

from sdmodel.sdhci.memory import PAGE, HostMemory, HostMemoryError


def test_alloc_is_aligned_and_never_hands_out_page_zero() -> None:
    memory = HostMemory(64 * 1024)
    first = memory.alloc(100)
    second = memory.alloc(8, align=16)
    third = memory.alloc(1)
    assert (first, second, third) == (PAGE, PAGE + 112, 2 * PAGE)
    memory.free_all()
    assert memory.alloc(1) == PAGE


def test_data_written_reads_back() -> None:
    memory = HostMemory(64 * 1024)
    address = memory.alloc(512)
    memory.write(address, bytes(range(256)) * 2)
    assert memory.read(address + 255, 2) == b"\xff\x00"


@pytest.mark.parametrize(("address", "n"), [(64 * 1024 - 1, 2), (-1, 1), (64 * 1024, 1)])
def test_access_outside_the_ram_is_refused(address: int, n: int) -> None:
    memory = HostMemory(64 * 1024)
    with pytest.raises(HostMemoryError, match="outside"):
        memory.read(address, n)
    with pytest.raises(HostMemoryError, match="outside"):
        memory.write(address, bytes(n))


def test_alloc_raises_when_full_or_misaligned() -> None:
    memory = HostMemory(4 * PAGE)
    memory.alloc(2 * PAGE)
    with pytest.raises(HostMemoryError, match="host memory full"):
        memory.alloc(2 * PAGE)
    with pytest.raises(HostMemoryError, match="aligned to 3"):
        memory.alloc(1, align=3)
