"""The real recordings in ../shared/wire, and the framing and parser each one goes through."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest

from llm_sync import LlmError
from llm_sync.providers import Frame
from tests.support.paths import WIRE

__all__ = ["Framer", "Parser", "framer", "parse", "parser", "recordings"]

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
    from llm_sync.providers._responses import parse_events

    return parse_events(frames)


def _chat(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers._chat import parse_events

    return parse_events(frames)


def _openrouter(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers._chat import parse_events

    return parse_events(frames, keep_reasoning_details=True)


def _gemini(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.gemini import parse_events

    return parse_events(frames)


def _bedrock(frames: Iterator[Frame]) -> Iterator[Any]:
    from llm_sync.providers.bedrock import parse_events

    return parse_events(frames)


def _ollama(frames: Iterator[Frame]) -> Iterator[Any]:
    ollama = pytest.importorskip("llm_sync.providers.ollama")
    return ollama.parse_events(frames)  # type: ignore[no-any-return]


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


def framer(path: Path) -> Framer:
    if path.suffix == ".bin":
        return _eventstream
    if path.suffix == ".ndjson":
        return _ndjson
    # Gemini's body is SSE, but its provider reads it line by line (see providers/gemini.py).
    return _ndjson if path.parent.name == "gemini" else _sse


def parser(path: Path) -> Optional[Parser]:
    folder = path.parent.name
    if folder == "llamacpp":
        return _LLAMACPP.get(path.name.split("_", 1)[0])
    return _BY_FOLDER.get(folder)


def recordings() -> List[Any]:
    if not WIRE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{WIRE} is absent"), id="no-wire")]
    out = []
    for path in sorted(WIRE.glob("*/*")):
        if path.suffix in (".sse", ".ndjson", ".bin") and parser(path) is not None:
            out.append(pytest.param(path, id=f"{path.parent.name}/{path.name}"))
    return out


class _Ids:
    """A deterministic stand-in for ``uuid.uuid4`` while one parse runs."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.n)


def parse(path: Path, pieces: Sequence[bytes]) -> Tuple[Any, ...]:
    """``(chunks, error)``: what the provider makes of ``pieces``; the error as (type, text)."""
    parse_frames = parser(path)
    assert parse_frames is not None
    real = uuid.uuid4
    uuid.uuid4 = _Ids()
    chunks: List[Any] = []
    try:
        for chunk in parse_frames(framer(path)(iter(pieces))):
            chunks.append(chunk)
    except LlmError as err:
        return (chunks, (type(err).__name__, str(err)))
    finally:
        uuid.uuid4 = real
    return (chunks, None)


