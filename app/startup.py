"""Startup timing shared by the GUI and ``sdscope bench startup``.

The benchmark puts its wall-clock time in ``SDSCOPE_STARTUP_T0`` before spawning the GUI;
at its first paint the window prints ``{"startup_s": seconds since then}`` on stdout.
"""

from __future__ import annotations

import json
import os
import time

__all__ = ["STARTUP_ENV", "report_startup"]

STARTUP_ENV = "SDSCOPE_STARTUP_T0"


def report_startup() -> None:
    """Print the startup time if a benchmark asked for it."""
    t0 = os.environ.get(STARTUP_ENV)
    if t0:
        print(json.dumps({"startup_s": round(time.time() - float(t0), 4)}), flush=True)
