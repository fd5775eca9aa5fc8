"""Charts as inline SVG, drawn on the server: the page needs no script, no style sheet and no
font from anywhere, so it opens the same offline, in a mail client or from a file.

Each chart is a ``<svg class="plot">`` whose data marks carry ``class="mark"`` (so a test can
count what was drawn) and a ``<title>`` with the exact value (a tooltip). Geometry is computed
in floats; the numbers printed are formatted from the exact values by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Final, NamedTuple

WIDTH: Final = 640
HEIGHT: Final = 280
COLOURS: Final = ("#2f6db5", "#e07b28", "#3a9a5b", "#b54a4a")
DOTS_UP_TO: Final = 62
"""Line charts with more points than this draw smaller dots."""


class Point(NamedTuple):
    label: str
    value: float
    text: str
    """The exact value, as the reader sees it."""


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of 10)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    steps = math.ceil(top / step - 1e-9)
    return [i * step for i in range(steps + 1)]


def short_number(value: float) -> str:
    """An axis label: 1.5k, 20M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _svg(body: list[str], title: str, height: int = HEIGHT) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def bars(points: Sequence[Point], *, title: str, unit: str) -> str:
    """Horizontal bars, one a row, labels at the left, the value at the bar's end."""
    left, right, top, row = 184, 90, 10, 26
    height = top + row * len(points) + 34
    ticks = nice_ticks(max(p.value for p in points))
    scale = (WIDTH - left - right) / ticks[-1]
    body = [_grid_vertical(ticks, left, scale, top, height - 34)]
    for i, point in enumerate(points):
        y = top + i * row
        width = max(point.value * scale, 1.0)
        body.append(
            f'<rect class="mark" x="{left}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{COLOURS[0]}"><title>{escape(point.label)}: {escape(point.text)}</title>'
            "</rect>"
        )
        body.append(_text(left - 8, y + row / 2 + 4, _clip(point.label), anchor="end"))
        body.append(_text(left + width + 6, y + row / 2 + 4, point.text, cls="value"))
    body.append(_text(left + (WIDTH - left - right) / 2, height - 6, unit, anchor="middle"))
    return _svg(body, title, height)


_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 56
"""The margins of the charts with a vertical value axis (:func:`columns`, :func:`lines`)."""
_PLOT_WIDTH: Final = WIDTH - _LEFT - _RIGHT


def _value_frame(
    series: Sequence[tuple[str, Sequence[Point]]],
    top_value: float | None,
    tick_text: Callable[[float], str],
) -> tuple[int, int, int, float, str]:
    """Left edge, top edge, height, pixels per unit and grid of a plot whose value axis runs
    from 0 to ``top_value`` (else the highest point), in round ticks."""
    highest = max(p.value for _, points in series for p in points)
    ticks = nice_ticks(top_value if top_value is not None else highest)
    plot_h = HEIGHT - _TOP - _BOTTOM
    grid = _grid_horizontal(ticks, _LEFT, _TOP, plot_h, tick_text)
    return _LEFT, _TOP, plot_h, plot_h / ticks[-1], grid


def columns(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Point]]],
    *,
    title: str,
    unit: str,
    x_title: str,
    top_value: float | None = None,
    tick_text: Callable[[float], str] = short_number,
) -> str:
    """Vertical bars over categories in their order (a histogram's buckets, or days), one bar
    per series in each; a legend when there is more than one series."""
    left, top, plot_h, scale, grid = _value_frame(series, top_value, tick_text)
    slot = _PLOT_WIDTH / len(categories)
    bar = slot * 0.7 / len(series)
    body = [grid]
    for s, (name, points) in enumerate(series):
        colour = COLOURS[(s + 1) % len(COLOURS)] if len(series) == 1 else COLOURS[s]
        for i, point in enumerate(points):
            h = point.value * scale
            x = left + i * slot + slot * 0.15 + s * bar
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{escape(name)}, '
                f"{escape(point.label)}: {escape(point.text)}</title></rect>"
            )
        if len(series) > 1:
            body.append(_legend(s, name, colour, left))
    body.extend(
        _text(left + i * slot + slot / 2, top + plot_h + 16, categories[i], anchor="middle")
        for i in _label_positions(len(categories), 8)
    )
    body.append(_axis_titles(unit, x_title, left, top, plot_h))
    return _svg(body, title)


def _legend(index: int, name: str, colour: str, left: int) -> str:
    return f'<rect x="{left + index * 170}" y="6" width="12" height="12" fill="{colour}"/>' + (
        _text(left + index * 170 + 18, 16, name)
    )


def lines(
    days: Sequence[str],
    series: Sequence[tuple[str, Sequence[Point]]],
    *,
    title: str,
    unit: str,
    x_title: str,
    top_value: float | None = None,
    tick_text: Callable[[float], str] = short_number,
) -> str:
    """One line per series over days (each point a dot, so a single day still shows)."""
    left, top, plot_h, scale, grid = _value_frame(series, top_value, tick_text)
    step = _PLOT_WIDTH / max(len(days) - 1, 1)
    body = [grid]
    for s, (name, points) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        xy = [(left + i * step, top + plot_h - p.value * scale) for i, p in enumerate(points)]
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        radius = 3 if len(xy) <= DOTS_UP_TO else 1.5
        body.extend(
            f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}">'
            f"<title>{escape(name)}, {escape(day)}: {escape(p.text)}</title></circle>"
            for (x, y), day, p in zip(xy, days, points, strict=True)
        )
        body.append(_legend(s, name, colour, left))
    positions = _label_positions(len(days))
    body.extend(
        _text(left + i * step, top + plot_h + 16, days[i], anchor=_edge(i, len(days)))
        for i in positions
    )
    body.append(_axis_titles(unit, x_title, left, top, plot_h))
    return _svg(body, title)


def _edge(index: int, count: int) -> str:
    """Labels at the ends align inwards, so none is cut by the plot's edge."""
    if count > 1 and index == 0:
        return "start"
    return "end" if count > 1 and index == count - 1 else "middle"


def _label_positions(count: int, most: int = 6) -> list[int]:
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _grid_vertical(ticks: list[float], left: int, scale: float, top: int, bottom: int) -> str:
    parts = []
    for tick in ticks:
        x = left + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>')
        parts.append(_text(x, bottom + 14, short_number(tick), anchor="middle", cls="tick"))
    return "".join(parts)


def _grid_horizontal(
    ticks: list[float], left: int, top: int, plot_h: int, text: Callable[[float], str]
) -> str:
    parts = []
    for tick in ticks:
        y = top + plot_h - tick * plot_h / ticks[-1]
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{WIDTH - 16}" y2="{y:.1f}"/>'
        )
        parts.append(_text(left - 6, y + 4, text(tick), anchor="end", cls="tick"))
    return "".join(parts)


def _axis_titles(unit: str, x_title: str, left: int, top: int, plot_h: int) -> str:
    middle = top + plot_h / 2
    return _text(
        left + (WIDTH - left - 16) / 2, HEIGHT - 8, x_title, anchor="middle", cls="axis"
    ) + (
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {middle:.1f})">{escape(unit)}</text>'
    )


def _clip(label: str, most: int = 26) -> str:
    return label if len(label) <= most else label[: most - 1] + "\u2026"
