"""Property: any split of a recorded body into byte chunks gives the chunks of the unsplit body.

Every stream in ``../shared/wire`` (SSE ``.sse``, NDJSON ``.ndjson``, AWS event stream ``.bin``)
goes through the framing and the parse function its provider uses, once whole and then cut at
points Hypothesis picks; the ``LlmResponse`` lists (or the error) must be identical. Made-up ids
come from ``uuid.uuid4``, which is made deterministic per run so that two runs can be compared.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_sync import LlmError
from llm_sync._transport._frame import Frame
from tests.support.paths import WIRE

Framer = Callable[[Iterable[bytes]], Iterator[Frame]]
Parser = Callable[[Iterator[Frame]], Iterator[Any]]


def _sse(chunks: Iterable[bytes]) -> Iterator[Frame]:
    from llm_sync._transport._sse import iter_sse

    return iter_sse(chunks)


def _ndjson(chunks: Iterable[bytes]) -> Iterator[Frame]:
    from llm_sync._transport._ndjson import iter_ndjson

    return iter_ndjson(chunks)


def _eventstream(chunks: Iterable[bytes]) -> Iterator[Frame]:
    from llm_sync._transport._eventstream import iter_eventstream

    return iter_eventstream(chunks)


def _anthropic(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.anthropic import parse_events

    return parse_events(frames)


def _responses(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.openai import parse_responses_events

    return parse_responses_events(frames, model="m")


def _chat(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.openai_compatible import parse_events

    return parse_events(frames, provider="openai_compatible", model="m")


def _openrouter(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.openai_compatible import parse_events

    return parse_events(frames, provider="openrouter", model="m", keep_reasoning_details=True)


def _gemini(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.gemini import parse_events

    return parse_events(frames)


def _bedrock(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.bedrock import parse_events

    return parse_events(frames)


def _ollama(frames: Iterator[Frame]) -> Iterator[Any]:
    ollama = pytest.importorskip("llm_sync.providers.ollama")
    return ollama.parse_events(frames, model="m")  # type: ignore[no-any-return]


# Folder -> the parse function of the provider that reads that folder's recordings.
_BY_FOLDER = {
    "anthropic": _anthropic,
    "openai": _chat,
    "openai_responses": _responses,
    "openrouter": _openrouter,
    "zai": _chat,
    "gemini": _gemini,
    "bedrock": _bedrock,
    "ollama": _ollama,
}
# llama.cpp serves three APIs; the file name says which one answered.
_LLAMACPP = {"chat": _chat, "tiny": _chat, "messages": _anthropic, "responses": _responses}


def _framer(path: Path) -> Framer:
    if path.suffix == ".bin":
        return _eventstream
    if path.suffix == ".ndjson":
        return _ndjson
    # Gemini's body is SSE, but its provider reads it line by line (see providers/gemini.py).
    return _ndjson if path.parent.name == "gemini" else _sse


def _parser(path: Path) -> Optional[Parser]:
    folder = path.parent.name
    if folder == "llamacpp":
        return _LLAMACPP.get(path.name.split("_", 1)[0])
    return _BY_FOLDER.get(folder)


def _recordings() -> List[Any]:
    if not WIRE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{WIRE} is absent"), id="no-wire")]
    out = []
    for path in sorted(WIRE.glob("*/*")):
        if path.suffix in (".sse", ".ndjson", ".bin") and _parser(path) is not None:
            out.append(pytest.param(path, id=f"{path.parent.name}/{path.name}"))
    return out


class _Ids:
    """A deterministic stand-in for ``uuid.uuid4`` while one parse runs."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.n)


def _parse(path: Path, pieces: Sequence[bytes]) -> Tuple[Any, ...]:
    """``(chunks, error)``: what the provider makes of ``pieces``; the error as (type, text)."""
    parser = _parser(path)
    assert parser is not None
    real = uuid.uuid4
    uuid.uuid4 = _Ids()
    chunks: List[Any] = []
    try:
        for chunk in parser(_framer(path)(iter(pieces))):
            chunks.append(chunk)
    except LlmError as err:
        return (chunks, (type(err).__name__, str(err)))
    finally:
        uuid.uuid4 = real
    return (chunks, None)


def _cut(body: bytes, points: Iterable[int]) -> List[bytes]:
    cuts = sorted({p for p in points if 0 < p < len(body)})
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:])]


_cache: Dict[Path, Tuple[bytes, Tuple[Any, ...]]] = {}


def _whole(path: Path) -> Tuple[bytes, Tuple[Any, ...]]:
    if path not in _cache:
        body = path.read_bytes()
        _cache[path] = (body, _parse(path, [body]))
    return _cache[path]


def _folders() -> List[Any]:
    paths = [p.values[0] for p in _recordings() if p.values[0] is not None]
    if not paths:
        return _recordings()  # the one skipped param
    folders = sorted({p.parent.name for p in paths})
    return [pytest.param([p for p in paths if p.parent.name == f], id=f) for f in folders]


def _check_splits(path: Path) -> None:
    """A Hypothesis run over the splits of one recording."""
    body, expected = _whole(path)
    size = len(body)

    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        # Mostly a few cuts anywhere; sometimes many small pieces around one spot (split
        # UTF-8, split CRLF, a prelude cut in two).
        points = data.draw(st.lists(st.integers(0, size), max_size=40), label="cuts")
        if data.draw(st.booleans(), label="dense"):
            at = data.draw(st.integers(0, size), label="at")
            points += list(range(at, min(size, at + 64)))
        assert _parse(path, _cut(body, points)) == expected, path.name

    check()


@pytest.mark.parametrize("paths", _folders())
def test_any_split_gives_the_same_chunks(paths: List[Path]) -> None:
    # One test per folder (a test per file costs more in fixtures than in parsing).
    for path in paths:
        _check_splits(path)


def test_every_recording_whole_twice_and_one_byte_at_a_time() -> None:
    """The baseline is deterministic, and the finest split of all gives it too (one test for all
    files: a test per file costs more in fixtures than the parsing does)."""
    paths = [p.values[0] for p in _recordings() if p.values[0] is not None]
    if not paths:
        pytest.skip(f"{WIRE} is absent")
    for path in paths:
        body, expected = _whole(path)
        # Typed errors only (anything else escapes _parse), and the same result on a second run.
        assert _parse(path, [body]) == expected, path.name
        if len(body) <= 64 * 1024:  # the long ones are covered by the random splits
            assert _parse(path, [body[i : i + 1] for i in range(len(body))]) == expected, path.name
