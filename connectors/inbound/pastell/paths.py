"""ASGI middleware: the Pastell path quirks real clients depend on, normalised before routing.

`/api/v2//Entite/1/Document/` → `/api/v2/entite/1/document`; `/api/v2/api/v2/…` (Maarch) →
`/api/v2/…`; `//api/create-document.php&id_e=1` → `/api/create-document.php?id_e=1`;
`/web/api/x.php` → `/api/x.php`; `/api/rest/allo` → `/api/v2/version/allo`. `/api/v1/` (the
native API) is left alone.
"""

from __future__ import annotations

import re
from typing import Any

Scope = dict[str, Any]

_SLASHES = re.compile(r"/{2,}")
# The sub-resources whose first letter Pastell folds: `Entite/1/Document`, `Utilisateur/3/Role`.
# Other segments are ids or names (`familleConnecteur/TdT`) and stay as sent.
_RESOURCES = {"document", "connecteur", "flux", "role"}


def _lower_first(segment: str) -> str:
    return segment[:1].lower() + segment[1:] if segment[:1].isupper() else segment


def normalise(path: str, query: bytes) -> tuple[str, bytes]:
    original = path
    path = _SLASHES.sub("/", path)
    if path.startswith("/web/api/"):
        path = path[len("/web"):]
    if not path.startswith("/api/") or path.startswith("/api/v1/"):
        return original, query  # not Pastell's: untouched
    php = re.match(r"^(/api/[\w-]+\.php)&(.*)$", path)
    if php:  # "script.php&id_e=1&type=x": the parameters came after "&" instead of "?"
        path = php[1]
        extra = php[2].encode()
        query = extra + (b"&" + query if query else b"")
        return path, query
    if path.endswith(".php"):
        return path, query
    while path.startswith("/api/v2/api/v2/"):
        path = path[len("/api/v2"):]
    if path.rstrip("/") == "/api/rest/allo":
        return "/api/v2/version/allo", query
    parts = path.rstrip("/").split("/")  # ["", "api", "v2", resource, …]
    if len(parts) > 3 and parts[2] == "v2":
        parts[3] = _lower_first(parts[3])  # Pastell ucfirst()s the first and second resources
        for i in (4, 5):
            if len(parts) > i and _lower_first(parts[i]) in _RESOURCES:
                parts[i] = _lower_first(parts[i])
    return "/".join(parts) or "/", query


class PastellPathMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path, query = normalise(scope["path"], scope.get("query_string", b""))
            if path != scope["path"] or query != scope.get("query_string", b""):
                scope = {**scope, "path": path, "raw_path": path.encode(), "query_string": query}
        await self.app(scope, receive, send)
