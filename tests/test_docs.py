"""Every Python snippet in the docs runs as written, from the wheel a user installs.

The wheel is built once per session from the working tree and unpacked into a directory
that comes first on ``PYTHONPATH``: the snippets import exactly what the wheel ships
(package data included), and run in an empty directory, so they can use no file of the
repository. The blocks of one page run in order, as one program, like a reader's session.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    """The page's ```python blocks, dedented when they sit in a list item."""
    blocks = []
    for indent, body in _BLOCK.findall(page.read_text(encoding="utf-8")):
        blocks.append("\n".join(line[len(indent):] for line in body.splitlines()))
    return blocks


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the working tree, unpacked (built from a copy: the tree gets no build/ dir)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    for package in ("observe_sdk", "cod_reference"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(work / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "deprecat" not in build.stderr.lower(), build.stderr   # e.g. setuptools' project.license banner
    (wheel,) = (work / "dist").glob("observe_sdk-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run_python(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_snippets_import_the_wheel(wheel_site: Path, tmp_path: Path) -> None:
    done = run_python(wheel_site, "import observe_sdk, cod_reference; print(observe_sdk.__file__)", tmp_path)
    assert done.returncode == 0 and done.stdout.startswith(str(wheel_site)), done.stdout + done.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_snippet_runs(page: Path, wheel_site: Path, tmp_path: Path) -> None:
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python snippet")
    done = run_python(wheel_site, "\n\n".join(blocks), tmp_path)
    assert done.returncode == 0, f"{page.name}:\n{done.stderr}"
    assert "Traceback" not in done.stderr and "warning" not in done.stderr.lower(), done.stderr
    if page.name == "README.md":   # the SDK example keeps the guest's own output
        assert "hello from the guest" in done.stdout and "main  " in done.stdout, done.stdout
