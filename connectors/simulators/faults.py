"""Fault injection shared by the simulators (S²low, As@lae).

A :class:`FaultConfig` comes from the simulator settings (``settings.faults``) and can be replaced at
run time through the admin API: ``POST /_admin/faults`` with a JSON object (fields left out keep
their current value), ``DELETE /_admin/faults`` to go back to the configured defaults,
``GET /_admin/faults`` to read the current state (counters included).

Transport faults apply to every non-admin request (or only to those whose path ends with
``endpoint`` when it is set):

* ``fail_next``: the next N calls answer HTTP 500 **before** doing anything (no effect made);
* ``slow_seconds``: every answer is delayed by that many seconds;
* ``timeout_next``: for the next N calls the effect **is made**, then the answer is held for
  ``timeout_seconds`` (longer than the client timeout): the classic "did my POST go through?" case
  that makes idempotency lookups necessary;
* ``malformed_next``: the next N business answers carry a non-XML / non-JSON payload (each simulator
  decides where it matters: S²low status payloads, As@lae messages).

Business faults are simulator specific (``reject_rate`` for S²low, ``refuse_next`` for As@lae) and
live in the same object so one admin call sets everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_next: int = Field(0, ge=0, description="answer HTTP 500 to the next N calls")
    fail_status: int = Field(500, ge=400, le=599)
    endpoint: str | None = Field(None, description="restrict transport faults to paths ending so")
    slow_seconds: float = Field(0.0, ge=0)
    timeout_next: int = Field(0, ge=0, description="make the effect, then hold the answer")
    timeout_seconds: float = Field(65.0, ge=0)
    malformed_next: int = Field(0, ge=0, description="next N business payloads are garbage")
    # S²low: probability that a transmitted acte gets an AnomalieActe (seeded, deterministic)
    reject_rate: float = Field(0.0, ge=0, le=1)
    # As@lae: the next N transfers are refused (ReplyCode 101)
    refuse_next: int = Field(0, ge=0)


@dataclass
class FaultInjector:
    """Current fault state of one simulator instance (kept on ``app.state``)."""

    defaults: FaultConfig
    config: FaultConfig = field(init=False)
    injected: dict[str, int] = field(default_factory=lambda: {"fail": 0, "timeout": 0, "malformed": 0})

    def __post_init__(self) -> None:
        self.config = self.defaults.model_copy()

    def update(self, changes: dict[str, Any]) -> FaultConfig:
        self.config = FaultConfig.model_validate({**self.config.model_dump(), **changes})
        return self.config

    def reset(self) -> FaultConfig:
        self.config = self.defaults.model_copy()
        return self.config

    def _targets(self, path: str) -> bool:
        return self.config.endpoint is None or path.rstrip("/").endswith(self.config.endpoint)

    def take_fail(self, path: str) -> bool:
        if self.config.fail_next > 0 and self._targets(path):
            self.config.fail_next -= 1
            self.injected["fail"] += 1
            return True
        return False

    def take_timeout(self, path: str) -> bool:
        if self.config.timeout_next > 0 and self._targets(path):
            self.config.timeout_next -= 1
            self.injected["timeout"] += 1
            return True
        return False

    def take_malformed(self) -> bool:
        if self.config.malformed_next > 0:
            self.config.malformed_next -= 1
            self.injected["malformed"] += 1
            return True
        return False

    def take_refusal(self) -> bool:
        if self.config.refuse_next > 0:
            self.config.refuse_next -= 1
            return True
        return False

    def snapshot(self) -> dict[str, Any]:
        return {**self.config.model_dump(), "injected": dict(self.injected)}


def install_faults(
    app: FastAPI, injector: FaultInjector, *, failure_body: Callable[[], Response] | None = None
) -> None:
    """Wire the transport faults as middleware and the ``/_admin/faults`` endpoints."""

    @app.middleware("http")
    async def _inject(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Relative to the app: the simulators may be mounted under a prefix (/s2low, /asalae).
        path, root = request.scope["path"], request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path.startswith("/_admin"):
            return await call_next(request)
        if injector.take_fail(path):
            if failure_body is not None:
                response = failure_body()
                response.status_code = injector.config.fail_status
                return response
            return Response("Internal Server Error (injected)\n", status_code=injector.config.fail_status)
        hold = injector.take_timeout(path)
        slow = injector.config.slow_seconds if injector._targets(path) else 0.0
        response = await call_next(request)
        if slow:
            await asyncio.sleep(slow)
        if hold:
            await asyncio.sleep(injector.config.timeout_seconds)
        return response

    @app.get("/_admin/faults")
    async def get_faults() -> dict[str, Any]:
        return injector.snapshot()

    @app.post("/_admin/faults")
    async def set_faults(changes: dict[str, Any]) -> dict[str, Any]:
        injector.update(changes)
        return injector.snapshot()

    @app.delete("/_admin/faults")
    async def reset_faults() -> dict[str, Any]:
        injector.reset()
        return injector.snapshot()
