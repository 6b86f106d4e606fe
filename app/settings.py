"""Where the window keeps its settings (layout, recent images).

QSettings in INI format under organisation and application "sdscope". ``SDSCOPE_CONFIG_DIR``
moves them (tests point it at a temporary directory so they never touch the user's).
"""

from __future__ import annotations

import os

from widgets.qt import QApplication, QSettings

__all__ = ["CONFIG_DIR_ENV", "ORGANIZATION", "configure_settings", "open_settings"]

ORGANIZATION = "sdscope"
APPLICATION = "sdscope"
CONFIG_DIR_ENV = "SDSCOPE_CONFIG_DIR"


def configure_settings() -> None:
    """Set the names and location every ``QSettings()`` of this process uses."""
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, override)


def open_settings() -> QSettings:
    configure_settings()
    return QSettings()
