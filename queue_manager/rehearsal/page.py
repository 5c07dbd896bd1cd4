"""The rehearsal's report as one HTML file that works offline: the text report, and plots drawn
here as inline SVG (no script, no CDN): each GPU's jobs over time, each participant's
time-to-image, the queue manager's memory. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from queue_manager.rehearsal.report import Results, labels, megabytes, text_report
from queue_manager.rehearsal.stats import JobRun, Memory

_W, _ROW, _LEFT, _TOP = 900, 22, 120, 24
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:960px}
h2{margin-top:1.6em}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}
svg text{font-size:11px;font-family:system-ui,sans-serif}.axis{stroke:#999}"""


def html_report(r: Results) -> str:
    sections = [
        ("Jobs on each GPU over time", _timeline(r)),
        ("Time to image, per participant", _times(r)),
        ("Queue manager memory", _memory(r.memory)),
    ]
    body = "".join(f"<h2>{escape(title)}</h2>{svg}" for title, svg in sections if svg)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Rehearsal of {escape(r.url)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Rehearsal of {escape(r.url)}</h1>{body}"
        f"<h2>Report</h2><pre>{escape(text_report(r))}</pre></body></html>\n"
    )


def _colour(index: int) -> str:
    return f"hsl({index * 137.508 % 360:.0f},65%,50%)"


def _svg(height: int, content: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img">{content}</svg>'
    )


def _x_axis(y: int, span: float, unit: str = "s") -> str:
    ticks = []
    for i in range(6):
        x = _LEFT + (_W - _LEFT - 20) * i / 5
        ticks.append(
            f'<line class="axis" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{y}" '
            f'stroke-dasharray="2,3"/><text x="{x:.1f}" y="{y + 14}" text-anchor="middle">'
            f"{span * i / 5:.1f} {unit}</text>"
        )
    return "".join(ticks)


def _scale(span: float) -> float:
    return (_W - _LEFT - 20) / span if span > 0 else 0.0


def _timeline(r: Results) -> str:
    jobs = [j for j in r.jobs if j.worker and j.started is not None and j.finished is not None]
    if not jobs:
        return ""
    origin = min(j.queued or j.started or 0.0 for j in jobs)
    span = max((j.finished or 0.0) - origin for j in jobs) or 1.0
    workers = sorted({j.worker for j in jobs if j.worker})
    colour = {u: _colour(i) for i, u in enumerate(r.users)}
    short = labels(r.users)
    k, height = _scale(span), _TOP + _ROW * len(workers) + 24
    parts = [_x_axis(height - 22, span)]
    for row, worker in enumerate(workers):
        y = _TOP + row * _ROW
        parts.append(f'<text x="4" y="{y + 15}">{escape(worker)}</text>')
        for j in (j for j in jobs if j.worker == worker):
            x0 = _LEFT + ((j.started or 0.0) - origin) * k
            w = max(((j.finished or 0.0) - (j.started or 0.0)) * k, 1.0)
            tip = f"{j.user} job {j.number}: {(j.finished or 0.0) - (j.started or 0.0):.1f} s"
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="{_ROW - 6}" '
                f'fill="{colour.get(j.user, "#888")}"><title>{escape(tip)}</title></rect>'
            )
            if w > 22:
                parts.append(
                    f'<text x="{x0 + 2:.1f}" y="{y + 15}" fill="#fff">'
                    f"{escape(short.get(j.user, j.user))}</text>"
                )
    return _svg(height, "".join(parts))


def _times(r: Results) -> str:
    done = [j for j in r.jobs if j.time_to_image is not None]
    if not done:
        return ""
    span = max(j.time_to_image or 0.0 for j in done) or 1.0
    k, height = _scale(span), _TOP + _ROW * len(r.users) + 24
    parts = [_x_axis(height - 22, span)]
    for row, user in enumerate(r.users):
        y = _TOP + row * _ROW
        parts.append(f'<text x="4" y="{y + 15}">{escape(user)}</text>')
        parts += [_dot(j, _LEFT + (j.time_to_image or 0.0) * k, y) for j in done if j.user == user]
    return _svg(height, "".join(parts))


def _dot(j: JobRun, x: float, y: int) -> str:
    fill = "#d9480f" if j.via == "browser" else "#1c7ed6"
    tip = f"{j.user} job {j.number} ({j.via}): {j.time_to_image or 0.0:.1f} s"
    return (
        f'<circle cx="{x:.1f}" cy="{y + _ROW / 2:.1f}" r="5" fill="{fill}">'
        f"<title>{escape(tip)}</title></circle>"
    )


def _memory(m: Memory | None) -> str:
    if m is None or len(m.samples) < 2:
        return ""
    span = max(t for t, _ in m.samples) or 1.0
    low, high = min(b for _, b in m.samples), m.peak
    room = (high - low) or 1.0
    height = 180
    k = _scale(span)
    points = " ".join(
        f"{_LEFT + t * k:.1f},{_TOP + (height - _TOP - 30) * (1 - (b - low) / room):.1f}"
        for t, b in m.samples
    )
    labels_ = _y_labels(low, high, height)
    return _svg(
        height,
        f"{_x_axis(height - 22, span)}{labels_}"
        f'<polyline points="{points}" fill="none" stroke="#1c7ed6" stroke-width="2"/>',
    )


def _y_labels(low: float, high: float, height: int) -> str:
    marks: Sequence[tuple[float, float]] = ((low, height - 30), (high, _TOP))
    return "".join(f'<text x="4" y="{y + 4:.0f}">{megabytes(v)}</text>' for v, y in marks)
