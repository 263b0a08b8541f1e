"""The error tree's one status table, overflow parsing, stamping and pickling, without I/O."""

from __future__ import annotations

import json
import pickle
from typing import Optional, Tuple

import pytest

from llm_sync import (
    ApiError,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    StreamReadError,
)
from llm_sync._errors import error_for_status, internal_error, overflow_error, parse_overflow, stamp


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, ApiError, False),
        (401, InvalidApiKeyError, False),
        (403, InvalidApiKeyError, False),
        (404, ApiError, False),
        (408, RequestTimeoutError, True),
        (409, ApiError, True),
        (413, ApiError, False),
        (422, ApiError, False),
        (429, RateLimitedError, True),
        (500, ServerError, True),
        (502, ServerError, True),
        (503, ServerError, True),
        (529, ServerError, True),
    ],
)
def test_one_table_maps_statuses_to_errors(status: int, cls: type, retryable: bool) -> None:
    err = error_for_status(status, "said no", body="{}", retry_after=2.0)
    assert type(err) is cls and err.retryable is retryable and err.status == status
    if isinstance(err, (RateLimitedError, ServerError)):
        assert err.retry_after == 2.0
    if isinstance(err, RequestTimeoutError):
        assert err.phase == "server"


# One text per provider from ../shared/wire/overflow_messages.md, with the numbers it carries.
_TEXTS: Tuple[Tuple[str, Optional[Tuple[int, int]]], ...] = (
    ("prompt is too long: 200251 tokens > 200000 maximum", (200251, 200000)),
    (
        "input length and `max_tokens` exceed context limit: 189136 + 20000 > 204648, decrease input length",
        (209136, 204648),
    ),
    (
        "This model's maximum context length is 4097 tokens. However, your messages resulted in 6988 tokens.",
        (6988, 4097),
    ),
    (
        "This model's maximum context length is 4097 tokens, however you requested 4569 tokens (3545 in your prompt)",
        (4569, 4097),
    ),
    (
        "This endpoint's maximum context length is 131072 tokens. However, you requested about 141607 tokens",
        (141607, 131072),
    ),
    (
        "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).",
        (3475108, 1048576),
    ),
    (
        "The model returned the following errors: prompt is too long: 903884 tokens > 200000 maximum",
        (903884, 200000),
    ),
    (
        "request (6010 tokens) exceeds the available context size (2048 tokens), try increasing it",
        (6010, 2048),
    ),
    ("Requested tokens (2285) exceed context window of 2048", (2285, 2048)),
    ("Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 509178 tokens", (509178, 272000)),
    ("Your input exceeds the context window of this model. Please adjust your input and try again.", None),
    ("Input is too long for requested model.", None),
    ("the input length exceeds the context length", None),
    ("the request exceeds the available context size. try increasing the context size", None),
)


@pytest.mark.parametrize(("text", "numbers"), _TEXTS)
def test_every_providers_overflow_text_is_recognised(text: str, numbers: Optional[Tuple[int, int]]) -> None:
    assert parse_overflow(text) == (numbers if numbers is not None else (None, None))
    err = overflow_error(text, "too long", status=400)
    assert isinstance(err, ContextOverflowError) and not err.retryable
    assert (err.requested_tokens, err.max_tokens) == (numbers or (None, None))


@pytest.mark.parametrize("text", ["", "model not found", "rate limit exceeded", "maximum context length is great"])
def test_other_texts_are_not_overflows(text: str) -> None:
    assert parse_overflow(text) is None and overflow_error(text, "x") is None


def test_numbers_given_as_fields_win_over_the_text() -> None:
    err = overflow_error("request (6010 tokens) exceeds the available context size (2048 tokens)", "x",
                         requested_tokens=6011, max_tokens=2049)
    assert err is not None and (err.requested_tokens, err.max_tokens) == (6011, 2049)
    # Fields alone are enough, with a text that says nothing.
    alone = overflow_error("bad request", "x", requested_tokens=9)
    assert alone is not None and alone.requested_tokens == 9


def test_stamp_fills_only_what_is_missing() -> None:
    err = stamp(ApiError("no"), "anthropic", "claude-x")
    assert (err.provider, err.model) == ("anthropic", "claude-x")
    named = stamp(ApiError("no", provider="codex", model="gpt-5"), "openai", "gpt-4.1")
    assert (named.provider, named.model) == ("codex", "gpt-5")
    assert str(err) == "no (provider=anthropic, model=claude-x)"


def test_an_unexpected_exception_becomes_a_named_error_with_its_cause() -> None:
    try:
        json.loads("{nope")
    except ValueError as exc:
        err = internal_error(exc)
    assert isinstance(err, JsonParsingError) and isinstance(err.__cause__, json.JSONDecodeError)
    try:
        {}["missing"]  # type: ignore[index]
    except KeyError as exc:
        err = internal_error(exc)
    assert isinstance(err, StreamReadError) and "please report" in str(err) and "KeyError" in str(err)


def test_errors_survive_pickling_with_their_fields() -> None:
    err = RateLimitedError("slow down", retry_after=3.0, provider="openai", model="m", status=429, body="b")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitedError and back.retry_after == 3.0
    assert (back.provider, back.model, back.status, back.body, str(back)) == ("openai", "m", 429, "b", str(err))
    over = pickle.loads(pickle.dumps(ContextOverflowError("big", requested_tokens=5, max_tokens=4)))
    assert (over.requested_tokens, over.max_tokens) == (5, 4)


def test_bodies_are_kept_bounded() -> None:
    err = LlmError("x", body="y" * 10_000)
    assert err.body is not None and len(err.body) < 4_100 and err.body.endswith("more characters]")
