"""Structured output from a real model with no key: the embedded Gemma 3 270M on llama.cpp's server, grammar-constrained.

The schema travels in ``response_format`` (``json_schema``); llama.cpp turns it into a
grammar, so even a 270M base model can only write JSON that fits. Ten prompts, ten
valid ``.parsed`` values (as issue 22 asks): each answer costs seconds of CPU, so the test is marked
``local_model`` and runs once per CI run, in ``tox -e local``; skipped without the
``local`` extra.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from llm_sync import ChatMessage, Context, StopReason, local
from tests.support.local_model import SKIP_REASON, needs_local

PLACE = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 40},
        "country": {"type": "string", "minLength": 1, "maxLength": 40},
    },
    "required": ["city", "country"],
    "additionalProperties": False,
}
PROMPTS = [
    "Paris is in France.",
    "Tokyo is the capital of Japan.",
    "I grew up in Lima, Peru.",
    "Berlin is a city in Germany.",
    "Cairo lies on the Nile in Egypt.",
    "We flew to Sydney, Australia.",
    "Toronto is the largest city of Canada.",
    "Nairobi, Kenya, is busy today.",
    "Rome is the capital of Italy.",
    "She moved to Mumbai in India.",
]


@pytest.fixture(scope="module")
def gemma() -> Iterator[local.LocalServer]:
    """A server of the module's own, started before the tests' leak snapshots and stopped after them.

    One thread: on a busy machine llama.cpp's threads spin waiting for each other, and a
    270M model needs no more (measured: 3.5 s of CPU per answer with one thread, 36 s
    with eight, under load).
    """
    if not local.available():
        pytest.skip(SKIP_REASON)
    with local.LocalServer(n_ctx=512, threads=1) as server:
        yield server


@needs_local
def test_ten_prompts_give_ten_valid_parsed_values(gemma: local.LocalServer) -> None:
    # The provider as users get it (the bundled model's transcript and stop strings),
    # deterministic, with room for the JSON and the whitespace the grammar lets a model
    # add around it. Made here: its connection pool goes with it at the end of the test.
    model = gemma.provider(temperature=0.0, max_tokens=96)
    parsed = []
    for prompt in PROMPTS:
        ctx = Context([ChatMessage.User(f"Extract the city and country: {prompt}")])
        ctx.set_output_schema(PLACE, name="place")
        reply = model.stream_response(ctx).collect()
        value = reply.parsed  # validated against PLACE, or StructuredOutputError
        assert set(value) == {"city", "country"} and all(value.values())
        assert reply.stop_reason in (StopReason.END_TURN, StopReason.LENGTH)
        parsed.append(value)
    assert len(parsed) == len(PROMPTS)
