"""Configuration: `DEMATBUS_*` environment variables, then a TOML file, then defaults.

`KAFKA_BOOTSTRAP_SERVERS` unset means "spawn the embedded broker"; `DEMATBUS_DATABASE_URL` unset
means "SQLite under the data directory".
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _toml_path() -> Path:
    return Path(os.environ.get("DEMATBUS_CONFIG", "dematbus.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEMATBUS_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "DEMATBUS_KAFKA_BOOTSTRAP_SERVERS"),
    )
    host: str = "127.0.0.1"
    api_port: int = 8000
    simulators_port: int = 8100
    topic_partitions: int = 4
    engine_lanes: int = 16  # engine events handled at once per worker (one document's stay in order)
    runner_concurrency: int = 8  # stage commands handled at once per worker and stage kind
    fetch_max_wait_ms: int = 50  # how long a consumer fetch may wait for records

    # Stage execution
    max_attempts: int = 5
    retry_backoff: float = 1.0  # seconds, doubled at each attempt (bus.retry.RetryPolicy)
    retry_backoff_max: float = 60.0
    poll_interval: float = 1.0  # how often pending remote effects are asked again, at first
    poll_interval_max: float = 7200.0  # ... then 1.5 times their age, up to this (bus.retry.PollSchedule)
    stage_timeout: float = 120.0  # reconciler re-drives documents idle longer than this
    reconcile_interval: float = 10.0
    outbox_retention: float = 3600.0  # published outbox rows are deleted after this many seconds
    # A fresh embedded broker (memory storage) remembers nothing: re-drive every open document
    # at start-up instead of waiting for the stage timeout.
    redrive_on_start: bool = False
    connector_timeout: float = 30.0
    # How often each collectivité's TdT is asked for the préfecture's messages about its acknowledged
    # actes (bus/courriers): one listing per collectivité and interval, whatever the number of actes.
    prefecture_poll_interval: float = 300.0
    # DEMATBUS_WORKER_METRICS_PORT: the worker's /metrics, /healthz, /readyz (off by default)
    worker_metrics_port: int | None = None

    # Reliability (bus.broker_epoch, bus.health)
    broker_epoch_interval: float = 2.0  # how often a worker checks the broker still remembers the stream
    broker_lost_after: float = 20.0  # a worker whose broker is silent this long exits to start afresh
    ready_outbox_lag: float = 60.0  # /readyz fails when the oldest unpublished outbox row is older
    shutdown_grace: float = 10.0  # a worker's clean stop on SIGTERM takes at most this long

    # Webhooks (bus.webhooks): retried with exponential backoff, then left as failed
    webhook_retry_backoff: float = 1.0
    webhook_retry_backoff_max: float = 600.0
    webhook_max_attempts: int = 15
    webhook_timeout: float = 10.0

    # Télétransmission identity (agreed with the ministry)
    tdt_trigramme: str = "DMB"
    tdt_quadrigramme: str = "EACT"

    # Watched folders: <inbox>/<SIREN>/<flow>/
    watch_interval: float = 1.0

    # Encryption keys of the RH flows, one file per collectivité (default: <data_dir>/keys)
    encryption_keys_dir: Path | None = None

    # Publication of actes (connectors/inbound/publication): the address citizens reach the API at
    # (default http://<host>:<api_port>), and the registry's requests per minute per client address.
    public_url: str | None = None
    publication_rate_limit: int = 120

    # Deposit limits
    max_file_bytes: int = 150 * 1024 * 1024  # for flows that declare no max_file_mb
    max_annexes: int = 50

    # Failed authentications (bus/store/throttle.py): per face and client address, `auth_fail_limit`
    # failures within `auth_fail_window` seconds lock the client out for `auth_lockout` seconds.
    auth_fail_limit: int = 10
    auth_fail_window: float = 60.0
    auth_lockout: float = 60.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'dematbus.db').resolve()}"

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.api_port}").rstrip("/")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def keys_dir(self) -> Path:
        return self.encryption_keys_dir or self.data_dir / "keys"

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap_servers
