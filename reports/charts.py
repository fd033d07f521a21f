"""Bar charts as SVG, drawn on the server: readable without JavaScript, each bar titled in words; pure, no Flask."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 58  # room for the value axis, the day labels and the legend
TICKS = 4


@dataclass(frozen=True)
class Series:
    """One set of bars: its name in the legend, a value per day (None: nothing to draw), its colour."""

    name: str
    values: Sequence[float | None]
    colour: str


def axis(highest: float, top: float | None = None, *, whole: bool = False) -> tuple[float, float]:
    """The value axis's top and its step between lines: a step of 1, 2 or 5 times a power of ten, about four lines
    up to highest, at least 1 when whole (counts); top when given (a rating's 5) with whole steps."""
    if top is not None:
        return top, nice_step(top / 5)
    if highest <= 0:
        return 1.0, 1.0
    step = max(1.0, nice_step(highest / TICKS)) if whole else nice_step(highest / TICKS)
    return math.ceil(highest / step) * step, step


def nice_step(raw: float) -> float:
    """The first of 1, 2, 5 times a power of ten at or above raw."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-9)


def _label_every(days: int) -> int:
    """Every how many days a date is written under the bars, so labels never overlap."""
    return 1 if days <= 10 else math.ceil(days / 8)


def bar_chart(ident: str, title: str, labels: Sequence[str], series: Sequence[Series],
              say: Callable[[float], str] = lambda v: f"{v:g}", top: float | None = None) -> Markup:
    """Grouped bars, one group per label (a day), one bar per series; say writes a value in words; top fixes the
    axis's top (else it fits the highest value)."""
    finite = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    top, step = axis(max(finite, default=0.0), top, whole=all(float(v).is_integer() for v in finite))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / max(1, len(labels))
    bar = group * 0.8 / max(1, len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{ident}-title {ident}-desc">',
             f'<title id="{ident}-title">{escape(title)}</title>',
             f'<desc id="{ident}-desc">{escape(_summary(labels, series, say))}</desc>']
    for i in range(round(top / step) + 1):
        value = step * i
        y = TOP + plot_h - plot_h * value / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d4da" '
                     'stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#333">'
                     f'{escape(say(value))}</text>')
    every = _label_every(len(labels))
    for d, label in enumerate(labels):
        x0 = LEFT + group * d + group * 0.1
        for s, line in enumerate(series):
            value = line.values[d]
            if value is None:
                continue
            shown = min(value, top) if math.isfinite(value) else top
            h = plot_h * shown / top
            parts.append(f'<rect x="{x0 + bar * s:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{line.colour}"><title>{escape(label)}: {escape(line.name)} '
                         f'{escape(say(value))}</title></rect>')
        if d % every == 0:
            parts.append(f'<text x="{LEFT + group * (d + 0.5):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                         f'font-size="11" fill="#333">{escape(label)}</text>')
    x = LEFT
    for line in series:
        parts.append(f'<rect x="{x}" y="{HEIGHT - 18}" width="12" height="12" fill="{line.colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{HEIGHT - 8}" font-size="12" fill="#222">{escape(line.name)}</text>')
        x += 24 + 7 * len(line.name)
    parts.append("</svg>")
    return Markup("".join(parts))


def _summary(labels: Sequence[str], series: Sequence[Series], say: Callable[[float], str]) -> str:
    """What the chart shows, in one sentence per series, for a screen reader: its highest day."""
    sentences = []
    for line in series:
        days = [(v, label) for v, label in zip(line.values, labels, strict=True) if v is not None]
        if not days:
            sentences.append(f"{line.name}: nothing yet.")
            continue
        value, label = max(days, key=lambda item: item[0])
        sentences.append(f"{line.name}: highest on {label}, {say(value)}.")
    return " ".join(sentences)
