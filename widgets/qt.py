"""The single import point for the Qt binding and pyqtgraph (style guide: "Qt chosen in
one place"). Everything Qt in ``widgets`` and ``app`` comes from here.

pyqtgraph takes about a second to import, so it is loaded on first use of ``qt.pg``.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QObject,
    QSettings,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid as is_alive  # False once Qt deleted the C++ object

if TYPE_CHECKING:
    import pyqtgraph as pg

__all__ = [
    "is_alive",
    "QAction",
    "QApplication",
    "QByteArray",
    "QCloseEvent",
    "QDockWidget",
    "QEvent",
    "QFileDialog",
    "QFormLayout",
    "QFrame",
    "QGroupBox",
    "QHeaderView",
    "QKeySequence",
    "QLabel",
    "QMainWindow",
    "QMenu",
    "QMessageBox",
    "QObject",
    "QSettings",
    "QSize",
    "QSizePolicy",
    "QTimer",
    "QTreeWidget",
    "QTreeWidgetItem",
    "QVBoxLayout",
    "QWidget",
    "Qt",
    "QtCore",
    "QtGui",
    "QtWidgets",
    "Signal",
    "Slot",
    "pg",
]


def __getattr__(name: str) -> ModuleType:
    if name == "pg":
        import pyqtgraph

        return pyqtgraph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
