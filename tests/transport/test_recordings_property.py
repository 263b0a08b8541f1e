"""Property: any split of a recorded body into byte chunks gives the chunks of the unsplit body.

Every stream in ``../shared/wire`` (SSE ``.sse``, NDJSON ``.ndjson``, AWS event stream ``.bin``)
goes through the framing and the parse function its provider uses, once whole and then cut at
points Hypothesis picks; the ``LlmResponse`` lists (or the error) must be identical. Made-up ids
come from ``uuid.uuid4``, which is made deterministic per run so that two runs can be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.paths import WIRE
from tests.support.recordings import parse as _parse
from tests.support.recordings import recordings as _recordings


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
