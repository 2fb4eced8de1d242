"""What a syndicat installs is what works: the sdist and the wheel built from this tree carry every
file of bus/, connectors/ and schemas/, and `dematbus up --demo` run from that wheel, installed
(not editable) in a fresh virtualenv, takes an acte and a PES to `archived`.

The check runs once, on the SQLite pass of `make test` (the package does not depend on the store).
Every process it starts runs the fresh virtualenv's interpreter: teardown ends those, by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bus", "connectors", "schemas")
BUILD_INPUTS = ("pyproject.toml", "MANIFEST.in", "README.md", *PACKAGES)
# The integration tests' fast timings (tests/integration/conftest.py), so the demo settles quickly.
FAST = {
    "DEMATBUS_POLL_INTERVAL": "0.2",
    "DEMATBUS_RETRY_BACKOFF": "0.3",
    "DEMATBUS_STAGE_TIMEOUT": "6",
    "DEMATBUS_RECONCILE_INTERVAL": "2",
    "DEMATBUS_SIM_DELAY": "0.3",
}
PES_SIREN = "210600235"  # demo collectivité that signs its PES locally (XAdES)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(os.environ.get("DEMATBUS_TEST_POSTGRES")),
                       reason="packaging is checked once, on the SQLite pass"),
]


def source_files() -> list[str]:
    """The files of bus/, connectors/ and schemas/ as git knows them (tracked, or new and not ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *BUILD_INPUTS],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tree's file list is unknown")
    return sorted(p for p in listed if (ROOT / p).is_file())


def package_files(files: list[str]) -> set[str]:
    return {p for p in files if p.split("/", 1)[0] in PACKAGES}


def missing(expected: set[str], present: set[str]) -> list[str]:
    return sorted(expected - present)


@dataclass
class Built:
    sdist: Path
    wheel: Path
    expected: set[str]  # package files of the tree


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`python -m build` on a copy of the tree: the sdist, then the wheel built from that sdist."""
    files = source_files()
    src = tmp_path_factory.mktemp("src")
    for rel in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = dist.glob("dematbus-*.tar.gz")
    (wheel,) = dist.glob("dematbus-*.whl")
    return Built(sdist, wheel, package_files(files))


def test_sdist_and_wheel_carry_every_file_of_the_tree(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    assert not missing(built.expected, in_sdist), "missing from the sdist"
    assert not missing(built.expected, in_wheel), "missing from the wheel"
    # The data files that the first wheels lost (folders that are no importable package).
    assert {"schemas/xsd/seda_v2/2.1/seda-2.1-main.xsd", "bus/store/migrations/script.py.mako",
            "connectors/inbound/pastell/flux/actes-generique.yaml"} <= in_wheel
    assert not [n for n in in_wheel if "__pycache__" in n or n.endswith(".pyc")]


def test_missing_file_check_sees_a_dropped_xsd() -> None:
    """The comparison above is the one that failed on the wheel without the SEDA XSDs."""
    tree = {"schemas/xsd/seda_v2/2.1/seda-2.1-main.xsd", "bus/flows/actes.yaml"}
    assert missing(tree, {"bus/flows/actes.yaml"}) == ["schemas/xsd/seda_v2/2.1/seda-2.1-main.xsd"]


# ------------------------------------------------------------------- the installed wheel, running


def _venv_processes(venv: Path) -> list[int]:
    """Pids of the processes that run something of `venv` (its python, its dematbus, its broker)."""
    pids = []
    prefix = str(venv)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.decode(errors="replace").startswith(prefix) for arg in argv):
            pids.append(int(entry.name))
    return pids


@dataclass
class Installed:
    venv: Path
    python: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """A fresh virtualenv with the wheel installed (dependencies from the package index)."""
    venv = tmp_path_factory.mktemp("venv") / "dematbus"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(built.wheel)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEMATBUS_", "KAFKA_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "COLUMNS": "200", **FAST})
    try:
        yield Installed(venv, python, env)
    finally:
        for pid in _venv_processes(venv):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_installed_package_has_every_file_and_is_not_the_tree(built: Built, installed: Installed,
                                                              tmp_path: Path) -> None:
    probe = ("import json, pathlib, importlib.metadata as m, bus, schemas.xml;"
             "root = pathlib.Path(bus.__file__).parent.parent;"
             "print(json.dumps({'root': str(root), 'xsd': str(schemas.xml.XSD_DIR),"
             " 'files': [str(f) for f in m.files('dematbus') if (root / f).is_file()]}))")
    out = subprocess.run([str(installed.python), "-c", probe], cwd=tmp_path, env=installed.env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    found = json.loads(out)
    assert Path(found["root"]).is_relative_to(installed.venv), found["root"]
    assert not missing(built.expected, set(found["files"])), "missing from the installed package"


def _wait(what: str, predicate, timeout: float, proc: subprocess.Popen) -> object:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dematbus up exited ({proc.returncode}) while waiting for {what}"
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(300)
def test_demo_from_the_installed_wheel_archives_an_acte_and_a_pes(installed: Installed, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    log = open(tmp_path / "up.log", "wb")
    # cwd outside the tree: `python -m bus` in the children must import the installed package.
    proc = subprocess.Popen(
        [str(installed.venv / "bin" / "dematbus"), "up", "--demo", "--data-dir", str(data_dir),
         "--port", "0", "--simulators-port", "0"],
        cwd=tmp_path, env=installed.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        endpoints_file = data_dir / "endpoints.json"
        _wait("endpoints.json", endpoints_file.exists, 120, proc)
        endpoints = json.loads(endpoints_file.read_text())
        api = httpx.Client(base_url=endpoints["api"], timeout=30)
        keys = {d["siren"]: d["api_key"] for d in endpoints["demo"]}
        headers = {"Authorization": f"Bearer {keys[PES_SIREN]}"}

        pes = tmp_path / "PES_WHEEL.xml"
        subprocess.run([str(installed.python), "-m", "schemas.helios.generate", str(pes), "--siret",
                        f"{PES_SIREN}00017", "--nom-fic", "WHEEL_1", "--bordereaux", "1", "--pieces", "2",
                        "--pj", "1", "--pj-size", "2000"],
                       cwd=tmp_path, env=installed.env, check=True, capture_output=True, timeout=60)
        created = api.post("/api/v1/documents", headers=headers,
                           data={"flow": "helios", "siren": PES_SIREN, "metadata": '{"signature": true}'},
                           files={"document": ("PES_WHEEL.xml", pes.read_bytes(), "application/xml")})
        assert created.status_code == 201, created.text
        pes_id = created.json()["id"]

        def everyone() -> list[dict]:  # type: ignore[type-arg]
            return [d for key in keys.values()
                    for d in api.get("/api/v1/documents", headers={"Authorization": f"Bearer {key}"}).json()["documents"]]

        def settled() -> list[dict] | None:  # type: ignore[type-arg]
            docs = everyone()
            done = {"archived", "rejected", "error", "cancelled"}
            return docs if len(docs) == len(keys) + 1 and all(d["state"] in done for d in docs) else None

        # One demo acte per collectivité (local PAdES, i-Parapheur, unsigned) and the PES.
        docs = _wait("the demo actes and the PES to finish", settled, 150, proc)
        assert sorted((d["flow"], d["state"]) for d in docs) == (  # type: ignore[union-attr]
            [("actes", "archived")] * len(keys) + [("helios", "archived")]), docs
        pes_doc = api.get(f"/api/v1/documents/{pes_id}", headers=headers).json()
        assert pes_doc["replies"]["acquit"] == "accepted", pes_doc
        assert {"signed_document", "pes_acquit", "seda_transfer"} <= {f["role"] for f in pes_doc["files"]}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "up.log").read_text(errors="replace")[-3000:]


def test_the_image_installs_the_wheel_it_builds() -> None:
    """No Docker engine here: read the Dockerfile. Its last stage installs a built wheel and never
    the source tree (which would bring back `pip install .` and its own file selection)."""
    stages = (ROOT / "Dockerfile").read_text().split("\nFROM ")
    assert len(stages) == 3, "a build stage, then the runtime stage"
    builder, runtime = stages[1], stages[2]
    assert "python -m build" in builder
    copied = " ".join(line for line in builder.splitlines() if line.startswith("COPY ")).split()
    assert set(BUILD_INPUTS) <= set(copied), set(BUILD_INPUTS) - set(copied)
    assert "COPY --from=build /dist/*.whl" in runtime and "pip install --no-cache-dir /tmp/wheels/dematbus-" in runtime
    assert "COPY bus" not in runtime and "pip install ." not in runtime
