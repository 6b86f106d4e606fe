"""Fixtures for the storage tests: real image files in tmp_path, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sdmodel.storage import Storage, StorageOptions

BLOCK = 512


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """``make_image(blocks=64)``: an image whose block n is filled with the byte n % 256."""

    def make(blocks: int = 64, name: str = "card.img") -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join(bytes([lba % 256]) * BLOCK for lba in range(blocks)))
        return path

    return make


@pytest.fixture
def open_storage() -> Iterator[Callable[..., Storage]]:
    """``open_storage(path, **options)``: Storage.open, closed again after the test."""
    opened: list[Storage] = []

    def open_(path: Path, **options: bool) -> Storage:
        storage = Storage.open(path, StorageOptions(**options))
        opened.append(storage)
        return storage

    yield open_
    for storage in opened:
        storage.close()
