"""tests/app must never shadow the `app` package (nor tests/sdmodel `sdmodel`)."""

from __future__ import annotations

from pathlib import Path

import app
import sdmodel
import widgets

ROOT = Path(__file__).resolve().parents[2]


def test_packages_are_imported_from_the_source_tree() -> None:
    for package in (app, sdmodel, widgets):
        assert Path(package.__file__).resolve().parent == ROOT / package.__name__


def test_test_folders_are_not_packages() -> None:
    # With --import-mode=importlib, an __init__.py here would make pytest import
    # tests/app/test_x.py as "app.test_x" inside the real app package.
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("__init__.py")) == []
