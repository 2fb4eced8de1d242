"""Server-rendered SVG charts for the dashboard (no script). Monthly bars come from bus.reports."""

from __future__ import annotations

from html import escape

from bus.reports import fmt_int


def hbar_svg(items: list[tuple[str, int]], title: str, colour: str = "#1f5fa8") -> str:
    """Horizontal bars, one per (label, value), in the given order."""
    width, row, label_w, top = 720, 22, 260, 24
    height = top + row * max(len(items), 1) + 8
    peak = max([v for _, v in items] + [1])
    bar_room = width - label_w - 70
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
         f'role="img" aria-label="{escape(title)}" font-family="system-ui, sans-serif">'),
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    if not items:
        parts.append(f'<text x="0" y="{top + 14}" font-size="11">Aucune donnée</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = bar_room * value / peak
        short = label if len(label) <= 38 else label[:37] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}">'
                     f"<title>{escape(label)} : {value}</title></rect>")
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">{fmt_int(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)
