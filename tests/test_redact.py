"""Redaction: key shapes are masked, long text goes through in windows with the same result, and nothing raises."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_sync import LlmError, _redact
from llm_sync._redact import _PATTERN_SOURCE, _WINDOW, _mask_match, redact, register_secret

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture(autouse=True)
def no_known_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the shapes; keys other tests registered ("sk-ant", a
    # provider test's whole key) would be masked first and change the text.
    monkeypatch.setattr(_redact, "_known", set())


def test_key_shapes_are_masked() -> None:
    text = f"key sk-ant-api03-abcdefghijklmnop, token {JWT}, header Authorization: Bearer abc.def-ghi_jkl"
    out = redact(text)
    assert "abcdefghijklmnop" not in out and "IxMjM0NTY3ODkwIn0" not in out and "def-ghi_jkl" not in out, out
    assert "sk-...nop" in out and "Bearer abc...jkl" in out


def test_a_jwt_inside_a_longer_run_is_still_found() -> None:
    # The whole run from the first "eyJ" is one match now; the token may start later in it.
    for text in (f"eyJx.{JWT}", f"eyJshort-{JWT}", f"{JWT}.more.dots", "eyJ-eyJ-sk-abcdefghijklmnopq"):
        out = redact(text)
        assert "IxMjM0NTY3ODkwIn0" not in out and "abcdefghijklmnopq" not in out, (text, out)
    # And what is not a token stays as it was.
    assert redact("eyJ is how a JWT starts; eyJhello.world.x") == "eyJ is how a JWT starts; eyJhello.world.x"


_pieces = st.sampled_from(
    [" ", "\n", "  ", " Bearer ", "\nbearer\t", "sk-proj-", "abcdefghijklmnopqrstuv", "eyJ", "eyJhbGciOiJIUzI1NiJ9",
     ".", "-", "x" * 700, "AKIA", "lorem ipsum ", "é", "\u2028"]
)


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(_pieces, min_size=1, max_size=400), repeat=st.integers(1, 40))
def test_windows_give_the_same_result_as_one_pass(pieces: list[str], repeat: int) -> None:
    # ("Bearer" glued to a token before it can differ: the window then masks the two apart.)
    text = "".join(pieces) * repeat
    whole = re.compile(_PATTERN_SOURCE).sub(_mask_match, text)
    assert redact(text) == whole


def test_bearer_at_a_window_edge_keeps_its_token_masked() -> None:
    for pad in range(_WINDOW - 40, _WINDOW + 2):
        text = "w " * (pad // 2) + "Bearer      tok_abcdefghijkl " + "z " * 10000
        assert "tok_abcdefghijkl" not in redact(text), pad


def test_redaction_is_linear_on_hostile_runs() -> None:
    # Each of these made the old patterns rescan: together they took minutes.
    size = 256 * 1024
    for unit in ("eyJ-", "eyJxxxxxxxxxxxx.", "Bearer ", "sk-", "exceed the limit of 5 tokens "):
        text = (unit * (size // len(unit) + 1))[:size]
        started = time.process_time()
        redact(text)
        assert time.process_time() - started < 2.0, unit


def test_redaction_never_raises() -> None:
    register_secret(b"bytes-key-0123456789")  # type: ignore[arg-type]  # ignored, not stored
    register_secret(12345678)  # type: ignore[arg-type]
    assert redact("plain text", extra=[b"x", None, 3]) == "plain text"  # type: ignore[list-item]
    assert redact(ValueError("sk-abcdefghijklmnop12")) == "sk-...p12"  # type: ignore[arg-type]
    # Errors build with anything as their message, after a bytes key was seen.
    err = LlmError("still works", body="body")
    assert str(err) == "still works" and err.body == "body"
