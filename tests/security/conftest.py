"""Hypothesis profiles of the fuzzing tests: `make test` runs the short one (few examples, a
deadline per example, no example database written); `DEMATBUS_FUZZ=long` runs a campaign."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dematbus-short", max_examples=25, deadline=5000, database=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dematbus-long", max_examples=3000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("dematbus-long" if os.environ.get("DEMATBUS_FUZZ") == "long" else "dematbus-short")
