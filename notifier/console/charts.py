"""Bar charts drawn on the server as SVG (no script: the console's CSP is ``script-src 'self'``).

A chart is rows of one or more series; each bar carries its figure in ``data-value`` and in its ``<title>``,
and its length is the figure over the chart's scale (100 for percentages, else the largest figure), so a
test can read back from the page what was drawn and compare it with the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

LABEL_WIDTH = 220  # room for a town's or a department's name, left of the bars
BAR_AREA = 420
VALUE_WIDTH = 110  # the figure, right of the bar
BAR_HEIGHT = 20
BAR_GAP = 4
ROW_GAP = 12
COLOURS = ("#0a5394", "#8a4b00", "#1d6b2a")  # contrast at least 4.5:1 on white


@dataclass(frozen=True)
class Series:
    key: str  # e.g. "reach_rate"
    label: str  # shown in the legend
    percent: bool = False  # a rate from 0 to 1, drawn and shown as a percentage


@dataclass
class Bar:
    series: str
    key: str
    value: float | None  # the report's figure (a rate from 0 to 1 for a percent series); None: no figure
    text: str
    x: float
    y: float
    width: float
    colour: str


@dataclass
class Chart:
    id: str
    title: str
    series: list[Series]
    labels: list[tuple[str, str, float]] = field(default_factory=list)  # key, label, y of its first bar
    bars: list[Bar] = field(default_factory=list)
    height: float = 0
    width: float = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    legend: list[tuple[str, str, float]] = field(default_factory=list)  # label, colour, x

    @property
    def summary(self) -> str:
        return "; ".join(
            f"{label}: " + ", ".join(b.text for b in self.bars if b.key == key) for key, label, _ in self.labels
        )


def bar_chart(
    chart_id: str, title: str, series: Sequence[Series], rows: Sequence[tuple[str, str, Sequence[float | None]]]
) -> Chart:
    """``rows``: (key, label, one figure per series). Percent series are scaled to 100 %, the others to their
    largest figure."""
    chart = Chart(chart_id, title, list(series))
    top = 30.0  # below the legend
    peaks = [max((row[2][i] or 0 for row in rows), default=0) or 1 for i in range(len(series))]
    x = 0.0
    for index, one in enumerate(series):
        chart.legend.append((one.label, COLOURS[index % len(COLOURS)], x))
        x += 16 + 14 * len(one.label) + 24
    y = top
    for key, label, values in rows:
        chart.labels.append((key, label, y))
        for index, (one, value) in enumerate(zip(series, values, strict=True)):
            scale = 1.0 if one.percent else peaks[index]
            width = 0.0 if value is None else round(BAR_AREA * value / scale, 1)
            chart.bars.append(
                Bar(
                    one.key, key, value, _text(value, one.percent), LABEL_WIDTH, y, width, COLOURS[index % len(COLOURS)]
                )
            )
            y += BAR_HEIGHT + BAR_GAP
        y += ROW_GAP
    chart.height = y
    return chart


def _text(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value * 100:.1f}%"
    return f"{value:g}"
