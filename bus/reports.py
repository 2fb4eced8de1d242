"""Volume reports per collectivité, computed from the journal (the durable ground truth).

"70 455 envois ACTES et 46 934 fichiers PES en 2017": for each collectivité, flow and month, how
many documents reached each outcome state during that month. A document counts once per state,
in the month it *first* entered it: a redrive or a replay that re-enters a state does not count
it again. Months are calendar months in French local time (Europe/Paris) by default: a document
deposited at 00:30 on 1 February (23:30 UTC on 31 January) is a February document.

The SQL is plain (MIN, CASE, COUNT, GROUP BY on columns) and runs on SQLite and PostgreSQL: the
first entry per (document, state) is found in SQL, bucketed into months with a CASE over
the 13 month boundaries (converted to naive UTC, the journal's clock), and counted per
(siren, flow, state, month). Python only lays out the result.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from bus.courriers.rules import METRICS, metric
from bus.store.db import Store
from bus.store.models import Collectivite, Document, JournalEntry, PrefectureMessage

# Outcome states counted, in report column order.
OUTCOMES: tuple[str, ...] = (
    "deposited", "signed", "transmitted", "acknowledged", "published", "rejected", "archived", "delivered", "error",
)
# Then the préfecture's letters received about the actes, per type (bus/courriers): prefecture_2-1 …
COLUMNS: tuple[str, ...] = OUTCOMES + METRICS
MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre", "décembre")
DEFAULT_TZ = "Europe/Paris"
MONTHS_FR_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
                   "déc.")
FLOW_COLOURS = ("#1f5fa8", "#d9822b", "#2a9d5c", "#8e44ad", "#c0392b", "#7f8c8d")


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(COLUMNS, 0)


@dataclass(frozen=True)
class VolumeRow:
    """One collectivité × flow × month."""

    siren: str
    name: str
    flow: str
    month: int  # 1..12
    counts: dict[str, int]

    def month_label(self, year: int) -> str:
        return f"{year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class VolumeTotal:
    """A total over the year: per collectivité × flow (siren set), per flow (siren None), or
    the grand total (siren and flow None)."""

    siren: str | None
    name: str | None
    flow: str | None
    counts: dict[str, int]


@dataclass
class VolumeReport:
    year: int
    rows: list[VolumeRow]  # 12 months for every (siren, flow) with activity in the year, sorted
    collectivite_totals: list[VolumeTotal]
    flow_totals: list[VolumeTotal]
    total: VolumeTotal
    sirens: list[str] | None = None  # the filter asked for (None: every collectivité)
    flow: str | None = None  # the flow filter
    group: str | None = None  # the collectivité group the SIRENs are the members of
    tz: str = DEFAULT_TZ
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    # -- shapes -------------------------------------------------------------------------------

    def names(self) -> dict[str, str]:
        return {t.siren: t.name or "" for t in self.collectivite_totals if t.siren}

    def flows(self) -> list[str]:
        return [t.flow for t in self.flow_totals if t.flow]

    def to_json(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "timezone": self.tz,
            "states": list(OUTCOMES),
            "prefecture_messages": list(METRICS),
            "filters": {"sirens": self.sirens, "flow": self.flow, "group": self.group},
            "generated_at": self.generated_at.isoformat(),
            "rows": [{"siren": r.siren, "name": r.name, "flow": r.flow, "month": r.month_label(self.year),
                      **r.counts} for r in self.rows],
            "totals": {
                "collectivites": [{"siren": t.siren, "name": t.name, "flow": t.flow, **t.counts}
                                  for t in self.collectivite_totals],
                "flows": [{"flow": t.flow, **t.counts} for t in self.flow_totals],
                "total": dict(self.total.counts),
            },
        }

    def to_csv(self) -> str:
        """One row per siren × flow × month, a blank line, then the totals (scope = collectivite,
        flow or total)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["siren", "name", "flow", "month", *COLUMNS])
        for r in self.rows:
            w.writerow([r.siren, _cell(r.name), r.flow, r.month_label(self.year), *(r.counts[s] for s in COLUMNS)])
        w.writerow([])
        w.writerow(["scope", "siren", "name", "flow", *COLUMNS])
        for t in self.collectivite_totals:
            w.writerow(["collectivite", t.siren, _cell(t.name or ""), t.flow, *(t.counts[s] for s in COLUMNS)])
        for t in self.flow_totals:
            w.writerow(["flow", "", "", t.flow, *(t.counts[s] for s in COLUMNS)])
        w.writerow(["total", "", "", "", *(self.total.counts[s] for s in COLUMNS)])
        return out.getvalue()

    def to_html(self) -> str:
        return _html(self)


def _cell(text: str) -> str:
    """A spreadsheet must not run a name as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# -- computation ---------------------------------------------------------------------------------


def month_bounds(year: int, tz: str = DEFAULT_TZ) -> list[datetime]:
    """The 13 boundaries (1 Jan .. 1 Jan next year) of the year's months in `tz`, as naive UTC
    datetimes: the journal stores naive UTC."""
    zone = ZoneInfo(tz)
    bounds = []
    for i in range(13):
        y, m = (year, i + 1) if i < 12 else (year + 1, 1)
        local = datetime(y, m, 1, tzinfo=zone)
        bounds.append(local.astimezone(UTC).replace(tzinfo=None))
    return bounds


async def volumes(store: Store, *, year: int, sirens: list[str] | None = None, flow: str | None = None,
                  tz: str = DEFAULT_TZ) -> VolumeReport:
    """Volumes of `year` per collectivité × flow × month, from the journal.

    `sirens` None means every collectivité; an empty list means none (an empty report)."""
    bounds = month_bounds(year, tz)
    start, end = bounds[0], bounds[12]
    first_at = func.min(JournalEntry.at)

    # First time each document entered each outcome state. Only entries before the end of the
    # year can be that first time when it falls inside the year (WHERE at < end keeps MIN exact);
    # entries before the start cannot be filtered out in WHERE, HAVING does it on the MIN.
    firsts = (
        select(Document.siren.label("siren"), Document.flow.label("flow"),
               JournalEntry.state.label("state"), first_at.label("first_at"))
        .join(Document, Document.id == JournalEntry.document_id)
        .where(JournalEntry.state.in_(OUTCOMES), JournalEntry.at < end)
        .group_by(Document.siren, Document.flow, JournalEntry.document_id, JournalEntry.state)
        .having(first_at >= start)
    )
    counted = _per_month(_filtered(firsts, sirens, flow), bounds, "state", "first_at")
    # The préfecture's letters received in the year, per type: from the `prefecture_messages`
    # table, whose `received_at` is the instant of the acte's journal entry (the live counters
    # count its day).
    received = (select(Document.siren.label("siren"), Document.flow.label("flow"),
                       PrefectureMessage.code.label("code"), PrefectureMessage.received_at.label("at"))
                .join(Document, Document.id == PrefectureMessage.document_id)
                .where(PrefectureMessage.received_at >= start, PrefectureMessage.received_at < end))
    letters_counted = _per_month(_filtered(received, sirens, flow), bounds, "code", "at")

    async with store.sessions() as session:
        result = (await session.execute(counted)).all()
        letters = (await session.execute(letters_counted)).all()
        found = sorted({r.siren for r in result} | {r.siren for r in letters})
        names: dict[str, str] = {}
        if found:
            names = dict((await session.execute(
                select(Collectivite.siren, Collectivite.name).where(Collectivite.siren.in_(found))
            )).tuples().all())

    cells: dict[tuple[str, str], dict[int, dict[str, int]]] = {}
    for r in result:
        months = cells.setdefault((r.siren, r.flow), {m: zero_counts() for m in range(1, 13)})
        months[int(r.month)][r.key] += int(r.n)
    for r in letters:
        months = cells.setdefault((r.siren, r.flow), {m: zero_counts() for m in range(1, 13)})
        months[int(r.month)][metric(r.key)] += int(r.n)
    return build_report(year, cells, names, sirens=sirens, flow=flow, tz=tz)


def _filtered(query: Any, sirens: list[str] | None, flow: str | None) -> Any:
    if sirens is not None:
        query = query.where(Document.siren.in_(sorted(set(sirens)) or [""]))
    if flow is not None:
        query = query.where(Document.flow == flow)
    return query


def _per_month(rows: Any, bounds: list[datetime], key: str, at: str) -> Any:
    """`rows` (siren, flow, `key`, `at`) counted per (siren, flow, key, month of `at`). The month
    bucket is computed in a subquery, then grouped by plain columns: PostgreSQL refuses to group by
    an expression whose bound parameters are numbered differently in SELECT and GROUP BY."""
    sq = rows.subquery()
    month = case(*[(sq.c[at] < bounds[m], m) for m in range(1, 12)], else_=12)
    bucketed = select(sq.c.siren, sq.c.flow, sq.c[key].label("key"), month.label("month")).subquery()
    return (select(bucketed.c.siren, bucketed.c.flow, bucketed.c.key, bucketed.c.month, func.count().label("n"))
            .group_by(bucketed.c.siren, bucketed.c.flow, bucketed.c.key, bucketed.c.month))


def build_report(year: int, cells: dict[tuple[str, str], dict[int, dict[str, int]]], names: dict[str, str], *,
                 sirens: list[str] | None = None, flow: str | None = None, tz: str = DEFAULT_TZ) -> VolumeReport:
    rows: list[VolumeRow] = []
    coll_totals: list[VolumeTotal] = []
    per_flow: dict[str, dict[str, int]] = {}
    grand = zero_counts()
    for (siren, fl) in sorted(cells):
        sub = zero_counts()
        for m in range(1, 13):
            counts = cells[(siren, fl)].get(m) or zero_counts()
            rows.append(VolumeRow(siren, names.get(siren, ""), fl, m, counts))
            for s in COLUMNS:
                sub[s] += counts[s]
        coll_totals.append(VolumeTotal(siren, names.get(siren, ""), fl, sub))
        acc = per_flow.setdefault(fl, zero_counts())
        for s in COLUMNS:
            acc[s] += sub[s]
            grand[s] += sub[s]
    flow_totals = [VolumeTotal(None, None, fl, per_flow[fl]) for fl in sorted(per_flow)]
    return VolumeReport(year=year, rows=rows, collectivite_totals=coll_totals, flow_totals=flow_totals,
                        total=VolumeTotal(None, None, None, grand),
                        sirens=sorted(set(sirens)) if sirens is not None else None, flow=flow, tz=tz)


# -- printable page ------------------------------------------------------------------------------


def fmt_int(n: int) -> str:
    """French grouping: 70 455 (narrow no-break space)."""
    return f"{n:,}".replace(",", "\u202f")


def _svg_chart(year: int, series: dict[str, list[int]], title: str, colours: dict[str, str]) -> str:
    """Grouped bars: documents deposited per month, one bar per flow. Plain SVG, no script."""
    flows = sorted(series)
    width, height, left, bottom, top = 720, 240, 48, 28, 24
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = max([v for vals in series.values() for v in vals] + [0])
    scale_max = _nice_max(peak)
    group_w = plot_w / 12
    bar_w = max(2.0, (group_w - 6) / max(len(flows), 1))
    full_h = height + 18 * ((len(flows) + 3) // 4)  # room for the legend
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{full_h}" '
         f'viewBox="0 0 {width} {full_h}" role="img" aria-label="{escape(title)}" '
         'font-family="system-ui, sans-serif">'),
        f'<title>{escape(title)}</title>',
        f'<text x="{left}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(5):  # gridlines and scale
        value = scale_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 12}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{fmt_int(round(value))}</text>')
    for m in range(12):
        gx = left + m * group_w + 3
        for k, fl in enumerate(flows):
            value = series[fl][m]
            h = plot_h * value / scale_max if scale_max else 0
            x = gx + k * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                         f'fill="{colours[fl]}"><title>{escape(fl)} '
                         f'{year}-{m + 1:02d}: {value}</title></rect>')
        parts.append(f'<text x="{gx + (group_w - 6) / 2:.1f}" y="{top + plot_h + 14}" font-size="10" '
                     f'text-anchor="middle">{MONTHS_FR_SHORT[m]}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" y2="{top + plot_h}" stroke="#333"/>')
    for k, fl in enumerate(flows):  # legend
        lx, ly = left + (k % 4) * 160, height + 4 + 18 * (k // 4)
        parts.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{colours[fl]}"/>')
        parts.append(f'<text x="{lx + 16}" y="{ly + 10}" font-size="11">{escape(fl)} '
                     f'({fmt_int(sum(series[fl]))})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_max(peak: int) -> int:
    if peak <= 4:
        return 4
    step = 1
    while True:
        for mult in (1, 2, 5):
            top = step * mult * 4
            if top >= peak:
                return top
        step *= 10


def _counts_cells(counts: dict[str, int], tag: str = "td") -> str:
    return "".join(f'<{tag} class="n">{fmt_int(counts[s])}</{tag}>' for s in COLUMNS)


def _html(report: VolumeReport) -> str:
    year = report.year
    head = "".join(f'<th class="n">{s}</th>' for s in COLUMNS)
    colours = {fl: FLOW_COLOURS[i % len(FLOW_COLOURS)] for i, fl in enumerate(report.flows())}
    deposited_by_flow: dict[str, list[int]] = {}
    for r in report.rows:
        deposited_by_flow.setdefault(r.flow, [0] * 12)[r.month - 1] += r.counts["deposited"]
    filters = []
    if report.flow:
        filters.append(f"flux {escape(report.flow)}")
    if report.group:
        filters.append(f"groupe {escape(report.group)}")
    if report.sirens is not None:
        filters.append("SIREN " + escape(", ".join(report.sirens)))
    body = [
        f"<h1>Volumes {year}</h1>",
        (f'<p class="meta">Documents ayant atteint chaque état, par mois ({escape(report.tz)}), d\'après le journal. '
         f"{'Filtre : ' + '; '.join(filters) + '. ' if filters else ''}"
         f"Généré le {escape(report.generated_at.strftime('%Y-%m-%d %H:%M'))} UTC.</p>"),
        "<h2>Totaux</h2>",
        f'<table class="totals"><thead><tr><th>flux</th>{head}</tr></thead><tbody>',
    ]
    for t in report.flow_totals:
        body.append(f"<tr><td>{escape(t.flow or '')}</td>{_counts_cells(t.counts)}</tr>")
    body.append(f'<tr class="total"><th>total</th>{_counts_cells(report.total.counts, "th")}</tr></tbody></table>')
    if report.rows:
        body.append(f'<div class="chart">{_svg_chart(year, deposited_by_flow, f"Documents déposés par mois en {year}", colours)}</div>')
    else:
        body.append("<p>Aucun document sur la période.</p>")

    names = report.names()
    for siren in sorted(names):
        totals = [t for t in report.collectivite_totals if t.siren == siren]
        rows = [r for r in report.rows if r.siren == siren]
        series: dict[str, list[int]] = {}
        for r in rows:
            series.setdefault(r.flow, [0] * 12)[r.month - 1] += r.counts["deposited"]
        body.append(f'<section class="coll"><h2>{escape(names[siren])} <small>SIREN {escape(siren)}</small></h2>')
        body.append(f'<table><thead><tr><th>flux</th><th>mois</th>{head}</tr></thead><tbody>')
        for t in totals:
            for r in (r for r in rows if r.flow == t.flow):
                body.append(f"<tr><td>{escape(r.flow)}</td><td>{MONTHS_FR[r.month - 1]}</td>{_counts_cells(r.counts)}</tr>")
            body.append(f'<tr class="total"><th>{escape(t.flow or "")}</th><th>total {year}</th>'
                        f'{_counts_cells(t.counts, "th")}</tr>')
        body.append("</tbody></table>")
        body.append(f'<div class="chart">{_svg_chart(year, series, f"{names[siren]} : documents déposés par mois", colours)}</div>')
        body.append("</section>")

    style = (
        "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em;color:#222}"
        "h1{margin-bottom:.2em}h2{margin-top:1.6em}h2 small{font-weight:normal;color:#666;font-size:.7em}"
        ".meta{color:#555}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}"
        "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}th{background:#f2f2f2}"
        ".n{text-align:right;font-variant-numeric:tabular-nums}tr.total th{background:#e6e6e6}"
        "@media print{body{margin:1cm}section.coll{page-break-before:always}.chart,table{page-break-inside:avoid}}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>dematbus : volumes {year}</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
