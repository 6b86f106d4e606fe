"""Plot ``sdscope bench --json`` results as PNGs for docs/performance.md.

    sdscope bench scale render ui-stall --json > results.jsonl
    python docs/perf/plots.py results.jsonl [--out DIR]

RESULTS holds one JSON object per line with a ``bench`` key; the last result of each
benchmark counts. Written into DIR (default: this folder), 900 px wide:

- ``decode-scaling.png``: decode wall time vs capture size, sdscope and sigrok-cli (scale)
- ``decode-memory.png``: peak RSS of those decodes vs capture size (scale)
- ``render-zoom.png``: the worst frame per visible window width, 16 ms line (render)
- ``ui-stall.png``: the largest event-loop gap per 100 ms, async vs legacy storage, 50 ms
  line (ui-stall)

A plot whose benchmark is not in the file is skipped with a note on stderr. Exit status 2,
with one line on stderr and nothing written, for a missing or unreadable file or a
malformed result; 1 when a PNG cannot be written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyqtgraph as pg
    from PySide6.QtGui import QImage

__all__ = ["PLOTS", "Plot", "ResultsError", "load_results", "main", "window_seconds"]

HERE = Path(__file__).resolve().parent
SIZE = (900, 500)
EXIT_BAD_FILE = 2
EXIT_NOT_WRITTEN = 1
FRAME_TARGET_MS = 16.0  # one frame at 60 Hz
STALL_TARGET_MS = 50.0  # a gap users notice
SDSCOPE = "#1f5fbf"
SIGROK = "#e07b00"
LEGACY = "#c62828"
TARGET = "#555555"
_WINDOW_KEY = re.compile(r"^max_ms_(\d+(?:\.\d+)?)(s|ms|us|ns|ps)$")  # render._label
_UNIT_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}


class ResultsError(ValueError):
    """The results file is missing, not JSON Lines of results, or a result lacks a key."""


def load_results(path: Path) -> dict[str, dict[str, Any]]:
    """The last result of each benchmark in ``path``, by name."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsError(f"{path}: cannot read it ({error})") from None
    results: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except json.JSONDecodeError as error:
            raise ResultsError(f"{path} line {number}: not JSON ({error.msg})") from None
        if not isinstance(result, dict) or not isinstance(result.get("bench"), str):
            raise ResultsError(f"{path} line {number}: not a result (no \"bench\" key)")
        results[result["bench"]] = result
    if not results:
        raise ResultsError(f"{path}: no benchmark results in it")
    return results


def _numbers(result: dict[str, Any], key: str, *, nullable: bool = False) -> list[float | None]:
    values = result.get(key)
    if not isinstance(values, list) or not all(
        (v is None and nullable) or isinstance(v, int | float) for v in values
    ):
        raise ResultsError(f"the {result['bench']} result has no list of numbers {key!r}")
    return values


def _pairs(result: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    values = result.get(key)
    if not isinstance(values, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p)
        for p in values
    ):
        raise ResultsError(f"the {result['bench']} result has no [t, ms] pairs {key!r}")
    return [p[0] for p in values], [p[1] for p in values]


def window_seconds(key: str) -> float | None:
    """``max_ms_4.88us`` -> 4.88e-06; None for other keys."""
    match = _WINDOW_KEY.match(key)
    return None if match is None else float(match.group(1)) * _UNIT_S[match.group(2)]


def _points(xs: Sequence[float | None], ys: Sequence[float | None], *, log_x: bool,
            log_y: bool) -> tuple[list[float], list[float]]:
    """The points the axes can show: both coordinates present, above zero on a log axis."""
    if len(xs) != len(ys):
        raise ResultsError(f"a result has {len(xs)} x values but {len(ys)} y values")
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None
            and (x > 0 or not log_x) and (y > 0 or not log_y)]
    return [x for x, _ in kept], [y for _, y in kept]


def _si(value: float, unit: str) -> str:
    """``2e-07, "s"`` -> ``200 ns``; ``1e7, ""`` -> ``10 M``."""
    prefixes = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}
    base = min(max(3 * math.floor(math.log10(value) / 3 + 1e-9), -12), 12)
    return f"{value / 10 ** base:.3g} {prefixes[base]}{unit}".strip()


def _log_ticks(plot: pg.PlotItem, axis: str, values: Sequence[float], label: Callable[
        [float], str], steps: tuple[int, ...] = (1,)) -> None:
    """Ticks of a log axis at ``steps`` x 10^n around ``values``, labelled by ``label``
    (pyqtgraph draws those inside the view)."""
    low, high = min(values), max(values)
    ticks = [step * 10.0**decade
             for decade in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
             for step in steps]
    item = plot.getAxis(axis)
    item.enableAutoSIPrefix(False)
    item.setTicks([[(math.log10(t), label(t)) for t in ticks], []])


def _headroom(plot: pg.PlotItem, values: Sequence[float], *, log: bool) -> None:
    """A y range over ``values`` with room at the top for the legend's row."""
    if log:
        plot.setYRange(math.log10(min(values) / 2), math.log10(max(values) * 4), padding=0)
    else:
        plot.setYRange(0, max(values) * 1.3, padding=0)


def _line(plot: pg.PlotItem, xs: list[float], ys: list[float], colour: str, name: str, *,
          symbol: str = "o", connect: bool = True, dashed: bool = False) -> None:
    from widgets.qt import Qt, pg

    style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
    plot.plot(xs, ys, name=name, pen=pg.mkPen(colour, width=2, style=style) if connect
              else None, symbol=symbol, symbolSize=7, symbolBrush=colour, symbolPen=colour)


def _target(plot: pg.PlotItem, xs: list[float], value: float, name: str) -> None:
    from widgets.qt import Qt, pg

    plot.plot([min(xs), max(xs)], [value, value], name=name,
              pen=pg.mkPen(TARGET, width=1.5, style=Qt.PenStyle.DashLine))


def _samples_axis(plot: pg.PlotItem, samples: list[float]) -> None:
    plot.setLabel("bottom", "capture size (samples)")
    _log_ticks(plot, "bottom", samples, lambda n: _si(n, ""))


def _per_sample(result: dict[str, Any], key: str) -> str:
    value = result.get(key)
    return f": {value:g} ns/sample" if isinstance(value, int | float) else ""


def draw_decode_time(plot: pg.PlotItem, result: dict[str, Any]) -> None:
    samples = _numbers(result, "samples")
    plot.setTitle("Decode time vs capture size (whole capture, one run each)")
    plot.setLogMode(x=True, y=True)
    times: list[float] = []
    for key, colour, name in (
        ("sdscope_s", SDSCOPE, "sdscope, CMD + DAT0-3" + _per_sample(
            result, "sdscope_ns_per_sample")),
        ("sigrok_s", SIGROK, "sigrok-cli sdcard_sd, CMD only" + _per_sample(
            result, "sigrok_ns_per_sample")),
    ):
        xs, ys = _points(samples, _numbers(result, key, nullable=True), log_x=True, log_y=True)
        if xs:
            _line(plot, xs, ys, colour, name)
            times += ys
    if not times:
        raise ResultsError("the scale result has no decode times")
    _samples_axis(plot, _points(samples, samples, log_x=True, log_y=True)[0])
    _log_ticks(plot, "left", times, lambda t: _si(t, "s"))
    _headroom(plot, times, log=True)
    plot.setLabel("left", "wall time (log)")


def draw_decode_memory(plot: pg.PlotItem, result: dict[str, Any]) -> None:
    samples = _numbers(result, "samples")
    plot.setTitle("Peak memory of the decode vs capture size")
    plot.setLogMode(x=True, y=False)
    peaks: list[float] = []
    for key, colour, name, dashed in (
        ("sdscope_peak_mib", SDSCOPE, "sdscope (Python process)", False),
        ("sdscope_base_mib", SDSCOPE, "sdscope before decoding (interpreter, numpy)", True),
        ("sigrok_peak_mib", SIGROK, "sigrok-cli", False),
    ):
        xs, ys = _points(samples, _numbers(result, key, nullable=True), log_x=True,
                         log_y=False)
        if xs:
            _line(plot, xs, ys, colour, name, dashed=dashed)
            peaks += ys
    if not peaks:
        raise ResultsError("the scale result has no peak memory figures")
    _samples_axis(plot, _points(samples, samples, log_x=True, log_y=True)[0])
    plot.setLabel("left", "peak RSS (MiB)")
    _headroom(plot, peaks or [1.0], log=False)


def draw_render_zoom(plot: pg.PlotItem, result: dict[str, Any]) -> None:
    levels = sorted((s, v) for k, v in result.items() if (s := window_seconds(k)) is not None)
    if not levels or not all(isinstance(v, int | float) for _, v in levels):
        raise ResultsError("the render result has no max_ms_<window> numbers")
    xs, ys = _points([s for s, _ in levels], [v for _, v in levels], log_x=True, log_y=False)
    samples = result.get("samples")
    plot.setTitle("Worst frame per zoom level" + (f" ({_si(samples, '')} samples)"
                                                   if isinstance(samples, int) else ""))
    plot.setLogMode(x=True, y=False)
    plot.invertX(True)
    _line(plot, xs, ys, SDSCOPE, "worst frame (range change -> painted)")
    _target(plot, xs, FRAME_TARGET_MS, f"{FRAME_TARGET_MS:g} ms (60 frames/s)")
    _log_ticks(plot, "bottom", xs, lambda t: _si(t, "s"))
    plot.setLabel("bottom", "visible time window (log; zooming in ->)")
    plot.setLabel("left", "frame time (ms)")
    _headroom(plot, [*ys, FRAME_TARGET_MS], log=False)


def draw_ui_stall(plot: pg.PlotItem, result: dict[str, Any]) -> None:
    plot.setTitle(f"Event-loop stall over time ({result.get('latency', '?')} storage latency, "
                  f"{result.get('hang_s', '?')} s hang)")
    plot.setLogMode(x=False, y=True)
    times: list[float] = []
    gaps: list[float] = []
    for key, colour, symbol, name in (
        ("async_series_ms", SDSCOPE, "o", "asynchronous storage"),
        ("legacy_series_ms", LEGACY, "t", "legacy synchronous storage"),
    ):
        xs, ys = _points(*_pairs(result, key), log_x=False, log_y=True)
        if xs:
            _line(plot, xs, ys, colour, name, symbol=symbol, connect=False)
            times, gaps = times + xs, gaps + ys
    if not times:
        raise ResultsError("the ui-stall result has no gaps in its series")
    _target(plot, [0.0, max(times)], STALL_TARGET_MS, f"{STALL_TARGET_MS:g} ms")
    _log_ticks(plot, "left", [*gaps, STALL_TARGET_MS], lambda ms: _si(ms / 1000, "s"),
               steps=(1, 2, 5))
    _headroom(plot, [*gaps, STALL_TARGET_MS], log=True)
    plot.setLabel("bottom", "time into the phase (s)")
    plot.setLabel("left", "largest gap per 100 ms (log)")


@dataclass(frozen=True)
class Plot:
    file: str
    bench: str  # the benchmark whose result it draws
    draw: Callable[[pg.PlotItem, dict[str, Any]], None]


PLOTS = (
    Plot("decode-scaling.png", "scale", draw_decode_time),
    Plot("decode-memory.png", "scale", draw_decode_memory),
    Plot("render-zoom.png", "render", draw_render_zoom),
    Plot("ui-stall.png", "ui-stall", draw_ui_stall),
)


def _render(plot: Plot, result: dict[str, Any]) -> QImage:
    """The plot as an image, SIZE[0] px wide, on white."""
    from pyqtgraph.exporters import ImageExporter  # not loaded by `import pyqtgraph`

    from widgets.qt import QApplication, Qt, pg

    widget = pg.PlotWidget()
    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    widget.resize(*SIZE)
    item = widget.getPlotItem()
    item.showGrid(x=True, y=True, alpha=0.25)
    item.addLegend(offset=(10, 5), labelTextSize="10pt", colCount=3,
                   brush=pg.mkBrush(255, 255, 255, 220))
    try:
        plot.draw(item, result)
        widget.show()
        QApplication.processEvents()
        exporter = ImageExporter(item)
        exporter.parameters()["width"] = SIZE[0]
        exporter.parameters()["background"] = pg.mkColor("w")
        image: QImage = exporter.export(toBytes=True)
    finally:
        widget.close()
    return image


def write_plots(results: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    """Write every plot whose benchmark is in ``results`` into ``out`` and note the others
    on stderr; nothing is written when a result is malformed (ResultsError)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from widgets.qt import QApplication, pg

    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    images: list[tuple[Path, QImage]] = []
    notes: list[str] = []
    for plot in PLOTS:
        result = results.get(plot.bench)
        if result is None:
            notes.append(f"plots: no {plot.bench} result; skipped {plot.file}")
        else:
            images.append((out / plot.file, _render(plot, result)))
    for note in notes:
        print(note, file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    for path, image in images:
        if not image.save(str(path)):
            raise OSError(f"cannot write {path}")
    del app
    return [path for path, _ in images]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plots.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, metavar="RESULTS.jsonl")
    parser.add_argument("--out", type=Path, default=HERE, metavar="DIR",
                        help="folder for the PNGs (default: docs/perf)")
    args = parser.parse_args(argv)
    try:
        for path in write_plots(load_results(args.results), args.out):
            print(f"wrote {path}")
    except ResultsError as error:
        print(f"plots: {error}", file=sys.stderr)
        return EXIT_BAD_FILE
    except OSError as error:
        print(f"plots: {error}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    return 0


if __name__ == "__main__":
    sys.exit(main())
