"""Tests for ContentBlock and its text helpers."""

from __future__ import annotations

import base64
import dataclasses
import json
import pickle
import sys
import textwrap

import pytest

from llm_sync import ContentBlock
from llm_sync._content import first_text, join_text


def test_variants_are_subclasses_of_the_base() -> None:
    for block in (ContentBlock.Text("hi"), ContentBlock.Image("aGk=", "image/png"), ContentBlock.Audio("aGk=", "audio/wav")):
        assert isinstance(block, ContentBlock)
    assert repr(ContentBlock.Text("hi")) == "ContentBlock.Text(text='hi')"


def test_blocks_are_frozen_and_hashable() -> None:
    block = ContentBlock.Text("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        block.text = "other"  # type: ignore[misc]
    assert {block, ContentBlock.Text("hi")} == {block}


def test_estimated_bytes_counts_utf8_text_and_base64_length() -> None:
    assert ContentBlock.Text("hello").estimated_bytes() == 5
    assert ContentBlock.Text("héllo").estimated_bytes() == 6
    assert ContentBlock.Text("日本").estimated_bytes() == 6
    assert ContentBlock.Image("QUJDRA==", "image/png").estimated_bytes() == 8
    assert ContentBlock.Audio("QUJD", "audio/wav").estimated_bytes() == 4


def test_is_image_and_data_uri() -> None:
    img = ContentBlock.Image("QUJD", "image/jpeg")
    aud = ContentBlock.Audio("QUJD", "audio/mpeg")
    txt = ContentBlock.Text("x")
    assert img.is_image and not aud.is_image and not txt.is_image
    assert img.as_data_uri() == "data:image/jpeg;base64,QUJD"
    assert aud.as_data_uri() == "data:audio/mpeg;base64,QUJD"
    assert txt.as_data_uri() is None


def test_from_bytes_encodes_and_to_bytes_decodes() -> None:
    raw = b"\x89PNG\r\n\x1a\n"
    img = ContentBlock.Image.from_bytes(raw, "image/png")
    assert img.data == base64.b64encode(raw).decode("ascii")
    assert img.to_bytes() == raw
    assert ContentBlock.Audio.from_bytes(b"RIFF", "audio/wav").to_bytes() == b"RIFF"


def test_first_text_skips_blank_and_media_and_trims() -> None:
    parts = [
        ContentBlock.Image("QUJD", "image/png"),
        ContentBlock.Text("   "),
        ContentBlock.Text("  first  "),
        ContentBlock.Text("second"),
    ]
    assert first_text(parts) == "first"
    assert ContentBlock.first_text(parts) == "first"
    assert first_text([ContentBlock.Text(" "), ContentBlock.Audio("QUJD", "audio/wav")]) is None
    assert first_text([]) is None


def test_join_text_joins_text_blocks_with_newlines() -> None:
    parts = [ContentBlock.Text("a"), ContentBlock.Image("QUJD", "image/png"), ContentBlock.Text("b")]
    assert join_text(parts) == "a\nb"
    assert ContentBlock.join_text(parts) == "a\nb"
    assert join_text([]) == ""


def test_json_shapes_match_the_crate() -> None:
    assert ContentBlock.Text("hi").to_dict() == {"type": "text", "text": "hi"}
    assert ContentBlock.Image("QUJD", "image/png").to_dict() == {
        "type": "image",
        "data": "QUJD",
        "mime_type": "image/png",
    }
    assert ContentBlock.Audio("QUJD", "audio/wav").to_dict()["type"] == "audio"


@pytest.mark.parametrize(
    "block",
    [ContentBlock.Text("héllo"), ContentBlock.Image("QUJD", "image/png"), ContentBlock.Audio("QUJD", "audio/wav")],
)
def test_json_round_trip(block: ContentBlock) -> None:
    again = ContentBlock.from_dict(json.loads(json.dumps(block.to_dict())))
    assert again == block
    assert type(again) is type(block)


def test_from_dict_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="video"):
        ContentBlock.from_dict({"type": "video", "data": "x"})


def test_wrong_types_are_refused_at_construction() -> None:
    with pytest.raises(TypeError, match=r"ContentBlock\.Text\.text"):
        ContentBlock.Text(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        ContentBlock.Image(b"raw", "image/png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mime_type"):
        ContentBlock.Audio("QUJD", "")


def test_pickle_round_trip() -> None:
    block = ContentBlock.Image("QUJD", "image/png")
    assert pickle.loads(pickle.dumps(block)) == block


@pytest.mark.skipif(sys.version_info < (3, 10), reason="match statements need Python 3.10")
def test_match_statement_on_variants() -> None:
    # Compiled at run time: a match statement is a syntax error on 3.9.
    code = textwrap.dedent(
        """
        def describe(block):
            match block:
                case ContentBlock.Text(t):
                    return "text:" + t
                case ContentBlock.Image(data=d, mime_type=m):
                    return "image:" + m + ":" + d
                case ContentBlock.Audio(_, m):
                    return "audio:" + m
            return "?"
        """
    )
    ns: dict[str, object] = {"ContentBlock": ContentBlock}
    exec(code, ns)
    describe = ns["describe"]
    assert describe(ContentBlock.Text("hi")) == "text:hi"  # type: ignore[operator]
    assert describe(ContentBlock.Image("QUJD", "image/png")) == "image:image/png:QUJD"  # type: ignore[operator]
    assert describe(ContentBlock.Audio("QUJD", "audio/wav")) == "audio:audio/wav"  # type: ignore[operator]
