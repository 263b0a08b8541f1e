"""AlloyedModelProvider: the reference crate's round-robin semantics, made thread-safe."""

from __future__ import annotations

import pickle
import threading
from typing import List, Optional

import pytest

from llm_sync import Context, LlmModel, LlmResponse, StopReason
from llm_sync._alloyed import AlloyedModelProvider
from llm_sync.testing import FakeLlmProvider
from tests.support.toy import ToyProvider


class _Named(FakeLlmProvider):
    """A fake that also names its model, so ``model()`` can be checked."""

    def __init__(self, name: str, window: Optional[int] = None, turns: int = 0) -> None:
        script = [[LlmResponse.Start(f"{name}-{i}"), LlmResponse.Text(name), LlmResponse.Done(StopReason.END_TURN)] for i in range(turns)]
        super().__init__(script, display_name=name, context_window=window)
        self._name = name

    def model(self) -> Optional[LlmModel]:
        return LlmModel("fake", self._name)


def _texts(p: AlloyedModelProvider, n: int) -> List[str]:
    return [p.stream_response(Context()).collect().text for _ in range(n)]


def test_round_robin_in_order_and_wraps() -> None:
    a, b, c = _Named("a", turns=2), _Named("b", turns=2), _Named("c", turns=2)
    alloy = AlloyedModelProvider([a, b, c])
    assert _texts(alloy, 5) == ["a", "b", "c", "a", "b"]
    assert (a.call_count, b.call_count, c.call_count) == (2, 2, 1)


def test_display_name_and_model_name_the_next_provider_without_advancing() -> None:
    alloy = AlloyedModelProvider([_Named("a", turns=1), _Named("b", turns=1)])
    assert alloy.display_name() == "a"
    assert alloy.display_name() == "a"  # reading does not advance
    assert alloy.model() == LlmModel("fake", "a")
    _texts(alloy, 1)
    # After one call, the name shown is the provider that serves the NEXT call.
    assert alloy.display_name() == "b"
    assert alloy.model() == LlmModel("fake", "b")
    _texts(alloy, 1)
    assert alloy.display_name() == "a"


def test_context_window_is_the_minimum_and_none_if_any_unknown() -> None:
    assert AlloyedModelProvider([_Named("a", 200_000), _Named("b", 128_000)]).context_window() == 128_000
    assert AlloyedModelProvider([_Named("a", 200_000), _Named("b", None)]).context_window() is None
    assert AlloyedModelProvider([_Named("a", 1_000)]).context_window() == 1_000


def test_empty_alloy_gives_an_empty_stream_and_placeholder_name() -> None:
    alloy = AlloyedModelProvider([])
    assert alloy.display_name() == "Alloyed (no providers)"
    assert alloy.model() is None
    assert alloy.context_window() is None
    with alloy.stream_response(Context()) as stream:
        assert list(stream) == []


def test_concurrent_calls_are_spread_evenly() -> None:
    fakes = [_Named(name, turns=40) for name in ("a", "b", "c", "d")]
    alloy = AlloyedModelProvider(fakes)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            alloy.stream_response(Context()).collect()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # 160 calls over 4 providers: an atomic counter gives exactly 40 each.
    assert [f.call_count for f in fakes] == [40, 40, 40, 40]


def test_rejects_non_providers() -> None:
    with pytest.raises(TypeError, match="StreamingModelProvider"):
        AlloyedModelProvider(["anthropic:claude-opus-4-6"])  # type: ignore[list-item]


def test_pickles_with_a_fresh_counter() -> None:
    alloy = AlloyedModelProvider([ToyProvider(model="x"), ToyProvider(model="y")])
    alloy._next_index()  # as a call would
    assert alloy.display_name() == "Toy (y)"
    again = pickle.loads(pickle.dumps(alloy))
    assert again.display_name() == "Toy (x)"
    assert [p.display_name() for p in again.providers] == ["Toy (x)", "Toy (y)"]
