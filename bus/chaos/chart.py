"""An SVG chart of a campaign, written by hand (no plotting dependency): documents finished per
second and deposits acknowledged per second (10-second windows), a vertical line at every kill
(coloured by kind), a tick at the bottom for every simulator fault, the calm phase shaded."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 960, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 170, 40, 50
WINDOW = 10.0
KILL_COLOURS = {"broker": "#d62728", "worker": "#ff7f0e", "api": "#9467bd"}
FAULT_COLOURS = {"tdt": "#1f77b4", "sae": "#2ca02c", "parapheur": "#8c564b"}


def rates(samples: Sequence[tuple[float, int]], window: float = WINDOW) -> list[tuple[float, float]]:
    """(t, count) samples of a growing counter → (t, per-second rate over the last `window` s)."""
    out, start = [], 0
    for t, count in samples:
        while samples[start][0] < t - window:
            start += 1
        t0, c0 = samples[start]
        out.append((t, (count - c0) / (t - t0) if t > t0 else 0.0))
    return out


def render(samples: Sequence[tuple[float, int, int]], kills: Sequence[tuple[float, str]],
           faults: Sequence[tuple[float, str]], calm_at: float | None, title: str) -> str:
    """samples: (t, acknowledged, finished); kills: (t, kind); faults: (t, target)."""
    end = max([s[0] for s in samples] + [1.0])
    finished = rates([(t, f) for t, _, f in samples])
    deposited = rates([(t, a) for t, a, _ in samples])
    top = max([r for _, r in finished + deposited] + [1.0]) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * t / end

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    def line(points: list[tuple[float, float]], colour: str, width: float = 2) -> str:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{path}"/>'

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']
    if calm_at is not None:
        parts.append(f'<rect x="{x(calm_at):.1f}" y="{TOP}" width="{x(end) - x(calm_at):.1f}" height="{plot_h}" '
                     f'fill="#f0f0f0"/><text x="{x(calm_at) + 4:.1f}" y="{TOP + 14}" fill="#777">calm</text>')
    for i in range(6):  # grid and axes
        value = top * i / 5
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.1f}</text>')
        t = end * i / 5
        parts.append(f'<text x="{x(t):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{t:.0f} s</text>')
    parts.append(f'<text x="16" y="{TOP + plot_h / 2}" transform="rotate(-90 16 {TOP + plot_h / 2})" '
                 f'text-anchor="middle">documents / s</text>')
    for t, kind in kills:
        colour = KILL_COLOURS.get(kind, "#000")
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{colour}" '
                     f'stroke-dasharray="4 3"><title>{kind} killed at {t:.0f} s</title></line>')
    for t, target in faults:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP + plot_h - 6}" y2="{TOP + plot_h}" '
                     f'stroke="{FAULT_COLOURS.get(target, "#000")}"/>')
    parts += [line(deposited, "#999", 1.5), line(finished, "#111", 2.5)]
    legend = [("#111", "finished / s"), ("#999", "deposited / s")]
    legend += [(c, f"{k} killed") for k, c in KILL_COLOURS.items()]
    legend += [(c, f"{t} fault") for t, c in FAULT_COLOURS.items()]
    for i, (colour, label) in enumerate(legend):
        ly = TOP + 10 + i * 18
        parts.append(f'<line x1="{WIDTH - RIGHT + 15}" x2="{WIDTH - RIGHT + 35}" y1="{ly}" y2="{ly}" '
                     f'stroke="{colour}" stroke-width="3"/><text x="{WIDTH - RIGHT + 40}" y="{ly + 4}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
