"""docker-compose.yml (no Docker engine here): its services agree with what the code reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from bus.cli import app
from bus.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_their_commands_exist() -> None:
    services = compose()["services"]
    assert {"kafka1", "kafka2", "kafka3", "postgres", "api", "worker", "simulators", "migrate", "watch"} <= set(services)
    commands = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    for name in ("api", "worker", "simulators", "migrate", "watch"):
        assert services[name]["command"][0] in commands
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["api"]["deploy"]["replicas"] == 2


def test_environment_matches_the_settings() -> None:
    services = compose()["services"]
    fields = {f"DEMATBUS_{name.upper()}" for name in Settings.model_fields} | {"KAFKA_BOOTSTRAP_SERVERS"}
    env = services["worker"]["environment"]
    assert set(env) <= fields, set(env) - fields
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka1:9092,kafka2:9092,kafka3:9092"
    assert env["DEMATBUS_DATABASE_URL"].startswith("postgresql+asyncpg://")
    settings = Settings(**{k.removeprefix("DEMATBUS_").lower(): v for k, v in env.items() if k.startswith("DEMATBUS_")})
    assert settings.topic_partitions == 12 and settings.host == "0.0.0.0"
    assert settings.db_url == env["DEMATBUS_DATABASE_URL"]


def test_kafka_is_kraft_with_three_replicas() -> None:
    services = compose()["services"]
    voters = services["kafka1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 3
    for i in (1, 2, 3):
        env = services[f"kafka{i}"]["environment"]
        assert env["KAFKA_NODE_ID"] == i and "controller" in env["KAFKA_PROCESS_ROLES"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services["postgres"]["environment"]["POSTGRES_DB"] in services["worker"]["environment"]["DEMATBUS_DATABASE_URL"]
