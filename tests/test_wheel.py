"""A regular (non-editable) install: ``pip install ".[local]"`` into a fresh venv, then the CLI from it.

An editable install and pytest both load modules (``importlib.util`` among them) that a plain
install does not, which is how a regular install once could not run the local model at all.
Costs about 30 s (pip's cache for the dependencies and the 250 MB model, one model load): it
runs where ``LLM_SYNC_WHEEL_TEST=1`` is set, as ``tox -e local`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.local_model import needs_local
from tests.support.paths import REPO

pytestmark = pytest.mark.skipif(
    os.environ.get("LLM_SYNC_WHEEL_TEST") != "1", reason="builds and installs a wheel: set LLM_SYNC_WHEEL_TEST=1"
)

# What a source checkout holds that the package build reads.
_SOURCES = ("setup.py", "setup.cfg", "README.md", "llm_sync")


@needs_local
def test_the_cli_runs_the_local_model_from_a_regular_install(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to setup.py
    source.mkdir()
    for name in _SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("XDG_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    installed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[local]"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import llm_sync, sys; print(llm_sync.__file__); "
         "print('importlib.util' in sys.modules)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    # Imported from the venv's site-packages, not from this checkout; nothing loaded importlib.util.
    assert where[0].startswith(str(venv)) and "site-packages" in where[0]
    assert where[1] == "False"
    done = subprocess.run(
        [str(bin_dir / "llm-sync"), "chat", "-m", "local", "What is the capital of France?"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "Paris\n", "")
