"""Pastell's error model: `{"status":"error","error-message":…}` with the HTTP status."""

from __future__ import annotations


class PastellError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}

    def body(self) -> dict[str, str]:
        return {"status": "error", "error-message": self.message}


def not_permitted(action: str, rule: str) -> PastellError:
    # Two spaces after the closing guillemet: clients compare this string as Pastell writes it.
    return PastellError(400, f"L'action « {action} »  n'est pas permise : {rule}")


def not_in_entite(id_d: str, id_e: int | str) -> PastellError:
    return PastellError(404, f"Le document {id_d} n'appartient pas à l'entité {id_e}")
