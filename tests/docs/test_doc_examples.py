"""Every code example in docs/ runs: Python blocks page by page, ``$ llm-sync`` lines as commands.

Each page's ``.. code-block:: python`` blocks run in order in one namespace (like a doctest
session) against the stand-in model on 127.0.0.1 (tests/examples/fake_llm.py), reached the way a
user reaches any server: ``ANTHROPIC_BASE_URL`` / ``OPENAI_COMPATIBLE_BASE_URL`` and a key in the
environment. ``.. code-block:: console`` lines starting with ``$ llm-sync`` run in a shell.
``sh`` blocks (installation, setup) are shown, not run.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from tests.examples.fake_llm import FakeLlmServer

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.rst"))
LANGUAGES = {"python", "console", "sh"}
KEY = "sk-ant-docs-test-key-0123456789"

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<lang>\S+)\s*$")


def code_blocks(path: Path) -> List[Tuple[str, str, int]]:
    """``(language, code, line number)`` of every ``code-block`` in an rST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent = len(m.group("indent"))
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip().startswith(":") and lines[j].strip():
            j += 1  # directive options
        body = []
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        out.append((m.group("lang"), textwrap.dedent("\n".join(body)).strip("\n"), start + 1))
        i = j
    return out


def test_pages_found_and_every_block_is_typed() -> None:
    assert len(PAGES) >= 10, PAGES
    total = 0
    for page in PAGES:
        for lang, code, line in code_blocks(page):
            assert lang in LANGUAGES, f"{page.name}:{line}: code-block language {lang!r}"
            assert code.strip(), f"{page.name}:{line}: empty code block"
            total += 1
        # A bare ``::`` literal block would escape these tests: all code goes in code-blocks.
        for n, text in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if text.rstrip().endswith("::") and not text.lstrip().startswith(".. "):
                pytest.fail(f"{page.name}:{n}: a literal block; use '.. code-block:: python'")
    assert total >= 40


PYTHON_PAGES = [p for p in PAGES if any(lang == "python" for lang, _, _ in code_blocks(p))]


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeLlmServer]:
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name in ("LLM_SYNC_MODEL", "OLLAMA_HOST"):
            monkeypatch.delenv(name)
    with FakeLlmServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", server.url + "/v1")
        monkeypatch.chdir(tmp_path)  # no stray .env file is found
        yield server


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[p.stem for p in PYTHON_PAGES])
def test_python_examples_run(page: Path, fake_env: FakeLlmServer, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: Dict[str, object] = {"__name__": f"docs_{page.stem}"}
    blocks = [(code, line) for lang, code, line in code_blocks(page) if lang == "python"]
    interval = sys.getswitchinterval()  # docs/threads.rst raises it, for the whole process
    try:
        for code, line in blocks:
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except BaseException as exc:  # KeyboardInterrupt included: name the block
                raise AssertionError(f"{page.name}:{line}: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.setswitchinterval(interval)
        namespace.clear()  # providers and streams go now, before the leak check
        gc.collect()
    out = capsys.readouterr().out
    if any("print(" in code for code, _ in blocks):
        assert out.strip(), f"{page.name}: the examples printed nothing"
    assert KEY not in out, "a key was printed"
    assert fake_env.errors == []


CONSOLE_LINES = [
    (page, line, text[2:])
    for page in PAGES
    for lang, code, line in code_blocks(page)
    if lang == "console"
    for text in code.splitlines()
    if text.startswith("$ ")
]


@pytest.mark.parametrize(
    "page,line,command", CONSOLE_LINES, ids=[f"{p.stem}:{n}:{c.split()[1]}" for p, n, c in CONSOLE_LINES]
)
def test_console_examples_run(page: Path, line: int, command: str, fake_env: FakeLlmServer, tmp_path: Path) -> None:
    assert "llm-sync" in command, f"{page.name}:{line}: only llm-sync commands are expected in console blocks"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "llm-sync").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llm_sync "$@"\n')
    (shim / "llm-sync").chmod(0o755)
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # `llm-sync chat` keeps conversations there
    env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, f"{page.name}:{line}: {command}\n{done.stderr}"
    assert done.stdout.strip(), f"{page.name}:{line}: no output"
    assert KEY not in done.stdout + done.stderr
