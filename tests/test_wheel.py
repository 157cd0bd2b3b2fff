"""The release artefacts: `python -m build` makes an sdist and a wheel from it; the wheel, installed
with pip into a fresh virtual environment (no system site packages, dependencies from the package
index), runs the README's first steps — demo, recognize, serve — from a folder outside the checkout,
so nothing is imported from the source tree."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from soundmark.demo import DEMO_CLIP_TRACK, DEMO_TRACKS
from support import wait_for

REPO = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
CLIP_TRACK = DEMO_TRACKS[DEMO_CLIP_TRACK]


@dataclass(frozen=True)
class Install:
    wheel: Path
    sdist: Path
    venv: Path
    cwd: Path  # an empty folder outside the checkout, where every command runs

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self) -> dict[str, str]:
        """The caller's environment less what would reach back into the checkout or its venv."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *args: str | Path, timeout: float = 300) -> str:
        out = subprocess.run(
            [str(a) for a in args], cwd=self.cwd, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        assert out.returncode == 0, f"{args} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
        return out.stdout


def _check(cmd: list[str], cwd: Path, what: str, timeout: float = 600) -> None:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{what} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("wheel")
    dist, venv, cwd = root / "dist", root / "venv", root / "elsewhere"
    cwd.mkdir()
    # The sdist, then the wheel built from the unpacked sdist (build's default): a file missing from
    # the sdist shows here, and no stale build/ folder of the checkout can slip into the wheel.
    _check([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], REPO, "python -m build")
    wheel, sdist = dist / f"soundmark-{VERSION}-py3-none-any.whl", dist / f"soundmark-{VERSION}.tar.gz"
    assert sorted(p.name for p in dist.iterdir()) == sorted([wheel.name, sdist.name])
    _check([sys.executable, "-m", "venv", str(venv)], root, "python -m venv")
    # --no-compile: no .pyc written for the dependencies at install (they compile on first import).
    _check([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel)], cwd, "pip")
    return Install(wheel, sdist, venv, cwd)


@pytest.fixture(scope="module")
def demo(install: Install) -> tuple[Path, Path]:
    """`soundmark demo` run from the installed wheel: (store, demo folder)."""
    db, out = install.cwd / "db", install.cwd / "demo"
    text = install.run("soundmark", "demo", "--db", db, "--out", out)
    assert f"{len(DEMO_TRACKS)} tracks in {db}" in text
    return db, out


def test_wheel_holds_the_package_its_licence_and_its_type_marker(install: Install) -> None:
    with zipfile.ZipFile(install.wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(f"soundmark-{VERSION}.dist-info/METADATA").decode()
    assert "soundmark/py.typed" in names
    assert f"soundmark-{VERSION}.dist-info/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata
    # Every module of the checkout's package is in the wheel (and nothing from tests/).
    wanted = {p.relative_to(REPO / "src").as_posix() for p in (REPO / "src" / "soundmark").rglob("*.py")}
    assert wanted - names == set()
    assert not any(n.startswith("tests/") for n in names)
    # The web app's templates and assets (package data, not modules).
    data = {p.relative_to(REPO / "src").as_posix() for d in ("templates", "static")
            for p in (REPO / "src" / "soundmark" / "web" / d).iterdir()}  # fmt: skip
    assert data and data - names == set()


def test_installed_package_is_the_wheel_not_the_checkout(install: Install) -> None:
    code = "import soundmark; print(soundmark.open); print(soundmark.__file__)"
    opener, init = install.run(install.bin("python"), "-c", code).splitlines()
    assert opener.startswith("<function open at ")
    where = Path(init).parent
    assert where.is_relative_to(install.venv), where
    assert (where / "py.typed").is_file()


def test_every_module_imports_with_only_the_runtime_dependencies(install: Install) -> None:
    """A module importing something only the dev extra installs (pytest, yaml, ...) fails here."""
    code = (
        "import importlib, pkgutil, soundmark\n"
        "names = [m.name for m in pkgutil.walk_packages(soundmark.__path__, 'soundmark.')"
        " if not m.name.endswith('__main__')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names))\n"
    )
    assert int(install.run(install.bin("python"), "-c", code)) > 50


def test_cli_version_demo_and_recognize(install: Install, demo: tuple[Path, Path]) -> None:
    assert install.run("soundmark", "--version").strip() == f"soundmark, version {VERSION}"
    db, out = demo
    clip = out / "demo-clip.wav"
    assert clip.is_file()
    line = json.loads(install.run("soundmark", "recognize", "--db", db, "--json", clip))
    assert line["status"] == "success"
    assert (line["result"]["artist"], line["result"]["title"]) == (CLIP_TRACK["artist"], CLIP_TRACK["title"])
    assert line["result"]["timecode"] == "00:20"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def served(install: Install, demo: tuple[Path, Path]) -> Iterator[str]:
    port = _free_port()
    log = install.cwd / "serve.log"
    cmd = ["soundmark", "serve", "--db", str(demo[0]), "--port", str(port), "--workers", "1"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=install.cwd, env=install.env(), stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"server exited {proc.returncode}:\n{log.read_text()}"
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for("the installed server's /healthz", healthy, timeout=90)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_recognises_the_demo_clip(install: Install, demo: tuple[Path, Path], served: str) -> None:
    clip = demo[1] / "demo-clip.wav"
    with httpx.Client(base_url=served, timeout=60) as client:
        health = client.get("/healthz").json()
        assert health["tracks"] == len(DEMO_TRACKS)
        with open(clip, "rb") as fh:
            body = client.post("/", files={"file": ("demo-clip.wav", fh, "audio/wav")}).json()
        assert body["status"] == "success", body
        result = body["result"]
        assert (result["artist"], result["title"]) == (CLIP_TRACK["artist"], CLIP_TRACK["title"])
        # What the server reads at run time from installed files: the song page, the OpenAPI schema,
        # and the Swagger UI assets (from the swagger-ui-bundle dependency).
        song = client.get(httpx.URL(result["song_link"]).path)
        assert song.status_code == 200 and str(CLIP_TRACK["title"]) in song.text
        assert client.get("/openapi.json").json()["info"]["title"]
        assert client.get("/docs").status_code == 200
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        # The web app: its templates and assets come from the installed package.
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and 'id="mic"' in page.text
        assert client.get("/static/listen.js").status_code == 200
