"""Where the application's assets live: ``assets/`` beside the packages (design.md layout).

The project is installed editable (Makefile: ``pip install -e`` in compat mode, a ``.pth``
naming the source tree), so the packages import from the source tree and ``assets/`` is
their sibling. ``SDSCOPE_ASSETS`` points elsewhere (a packaged install, a test).
"""

from __future__ import annotations

import os
from pathlib import Path

from sdmodel.errors import SdscopeError

__all__ = ["AssetsError", "ASSETS_ENV", "assets_dir", "lessons_dir", "captures_dir"]

ASSETS_ENV = "SDSCOPE_ASSETS"
_BESIDE_PACKAGES = Path(__file__).resolve().parents[2] / "assets"


class AssetsError(SdscopeError):
    """The assets folder is missing (a broken installation)."""


def assets_dir() -> Path:
    """The assets folder: ``$SDSCOPE_ASSETS`` if set, else ``assets/`` beside the packages."""
    override = os.environ.get(ASSETS_ENV)
    folder = Path(override) if override else _BESIDE_PACKAGES
    if not folder.is_dir():
        how = f"${ASSETS_ENV}" if override else "the installation"
        raise AssetsError(f"assets folder {folder} (from {how}) does not exist")
    return folder


def lessons_dir() -> Path:
    """``assets/lessons``: one TOML file per lesson."""
    return assets_dir() / "lessons"


def captures_dir() -> Path:
    """``assets/captures``: the real captures the lessons open."""
    return assets_dir() / "captures"
