"""The accessibility check every console page passes, in the browser: axe-core's WCAG 2.1 A/AA rules
(the ground RGAA 4 stands on: labels, contrast, language, names, ARIA…) run in the page, then the
keyboard — every focusable element is reached with Tab and shows a visible focus — and `lang="fr"`.

axe-core comes bundled in the `axe-playwright-python` wheel (a test dependency): nothing is
downloaded at run time.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
MAX_TABS = 300  # a page with more focusable elements than this is too long to check by Tab

_axe = Axe()

_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  return {key: e.tagName + '#' + e.id + '.' + (e.getAttribute('name') || '') + ':' + (e.getAttribute('href') || '')
               + ':' + (e.textContent || '').trim().slice(0, 30),
          outline: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0};
}"""


def axe_violations(page: Page, disabled: tuple[str, ...] = ()) -> list[str]:
    options: dict[str, Any] = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    if disabled:
        options["rules"] = {rule: {"enabled": False} for rule in disabled}
    results = _axe.run(page, options=options).response
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(
        ", ".join(n["target"]) for n in v["nodes"][:5]) for v in results["violations"]]


def focus_problems(page: Page) -> list[str]:
    """Tab from the top of the page through every focusable element, until the focus comes back to
    the first; each must show an outline of at least 2 px."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    problems, seen, first = [], set(), None
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None:
            continue
        if focused["key"] == first:
            page.evaluate("() => document.activeElement.blur()")
            return problems
        first = first or focused["key"]
        if focused["key"] in seen:
            continue
        seen.add(focused["key"])
        if focused["outline"] == "none" or focused["width"] < 2:
            problems.append(f"no visible focus on {focused['key']} (outline {focused['outline']} {focused['width']}px)")
    return [*problems, f"more than {MAX_TABS} Tab stops"] if first else ["nothing reachable with Tab"]


def check(page: Page, disabled: tuple[str, ...] = ()) -> list[str]:
    """Every problem of the page shown, for an assertion message; [] when it passes."""
    problems = [] if page.evaluate("document.documentElement.lang") == "fr" else ['<html> without lang="fr"']
    return problems + axe_violations(page, disabled) + focus_problems(page)
