"""The parts of a user message: ``ContentBlock`` and its text, image, audio and document variants."""

from __future__ import annotations

import base64
import builtins
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Optional

from ._values import value

__all__ = ["PDF", "ContentBlock", "first_text", "join_text"]


class ContentBlock:
    """Base of every content block. The variants are attributes: ``ContentBlock.Text`` and so on.

    Image, audio and document data is base64 text, as the reference crate keeps it:
    that is what most provider APIs take, so a block is encoded once, not on every request.
    """

    __slots__ = ()

    type: ClassVar[str]

    # The variants, bound below; declared here so type checkers see them.
    Text: ClassVar[builtins.type[Text]]
    Image: ClassVar[builtins.type[Image]]
    Audio: ClassVar[builtins.type[Audio]]
    Document: ClassVar[builtins.type[Document]]

    def estimated_bytes(self) -> int:
        """UTF-8 length of the text, or length of the base64 data (for token estimates)."""
        raise NotImplementedError

    @property
    def is_image(self) -> bool:
        return False

    def as_data_uri(self) -> Optional[str]:
        """``data:<mime>;base64,<data>`` for media blocks; None for text."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"type": "text", "text": ...}`` or ``{"type": "image", "data": ..., "mime_type": ...}``."""
        raise NotImplementedError

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ContentBlock:
        """Inverse of :meth:`to_dict`."""
        kind = data.get("type")
        if kind == "text":
            return Text(data["text"])
        if kind == "image":
            return Image(data["data"], data["mime_type"])
        if kind == "audio":
            return Audio(data["data"], data["mime_type"])
        if kind == "document":
            return Document(data["data"], data.get("mime_type") or PDF, data.get("name"))
        raise ValueError(f"unknown ContentBlock type {kind!r}; expected 'text', 'image', 'audio' or 'document'")

    @staticmethod
    def first_text(parts: Iterable[ContentBlock]) -> Optional[str]:
        return first_text(parts)

    @staticmethod
    def join_text(parts: Iterable[ContentBlock]) -> str:
        return join_text(parts)


def _check_str(owner: str, name: str, v: object) -> None:
    # Frozen dataclasses accept anything; a wrong type found here is easier to trace
    # than one found by a provider while it builds a request body.
    if not isinstance(v, str):
        raise TypeError(f"{owner}.{name} must be str, got {builtins.type(v).__name__}")


def _utf8_len(s: str) -> int:
    # ASCII is the common case and len() is exact for it; encoding costs a copy.
    return len(s) if s.isascii() else len(s.encode("utf-8"))


@value
class Text(ContentBlock):
    """Plain text."""

    type: ClassVar[str] = "text"
    text: str

    def __post_init__(self) -> None:
        _check_str("ContentBlock.Text", "text", self.text)

    def estimated_bytes(self) -> int:
        return _utf8_len(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text}


class _Media(ContentBlock):
    # Shared behaviour of Image and Audio; not a variant itself.
    __slots__ = ()

    data: str
    mime_type: str

    def _check(self) -> None:
        owner = f"ContentBlock.{builtins.type(self).__name__}"
        _check_str(owner, "data", self.data)
        _check_str(owner, "mime_type", self.mime_type)
        if not self.mime_type:
            raise ValueError(f"{owner}.mime_type must not be empty")

    def estimated_bytes(self) -> int:
        return len(self.data)

    def as_data_uri(self) -> Optional[str]:
        return f"data:{self.mime_type};base64,{self.data}"

    def to_bytes(self) -> bytes:
        """The decoded media bytes (Bedrock, for one, wants raw bytes)."""
        return base64.b64decode(self.data)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data, "mime_type": self.mime_type}


@value
class Image(_Media):
    """An image: base64 ``data`` and its ``mime_type`` (``image/png``, ``image/jpeg``, ...)."""

    type: ClassVar[str] = "image"
    data: str
    mime_type: str

    def __post_init__(self) -> None:
        self._check()

    @property
    def is_image(self) -> bool:
        return True

    @classmethod
    def from_bytes(cls, raw: bytes, mime_type: str) -> Image:
        """Build from raw image bytes (they are base64-encoded here)."""
        return cls(base64.b64encode(raw).decode("ascii"), mime_type)


@value
class Audio(_Media):
    """Audio: base64 ``data`` and its ``mime_type`` (``audio/wav``, ``audio/mpeg``, ...)."""

    type: ClassVar[str] = "audio"
    data: str
    mime_type: str

    def __post_init__(self) -> None:
        self._check()

    @classmethod
    def from_bytes(cls, raw: bytes, mime_type: str) -> Audio:
        """Build from raw audio bytes (they are base64-encoded here)."""
        return cls(base64.b64encode(raw).decode("ascii"), mime_type)


#: The MIME type of a PDF, the default of ``ContentBlock.Document``.
PDF = "application/pdf"


@value
class Document(_Media):
    """A document: base64 ``data``, its ``mime_type`` (a PDF unless said) and an optional file ``name``.

    Providers send it in their own document shape (see the providers guide); one that
    cannot take documents, or this document's type, refuses it with
    ``UnsupportedContentError`` before sending anything. ``name`` is what the model is
    told the file is called, where the API has a field for it (Bedrock needs one and
    has rules for it: see ``BedrockProvider``).
    """

    type: ClassVar[str] = "document"
    data: str
    mime_type: str = PDF
    name: Optional[str] = None

    def __post_init__(self) -> None:
        self._check()
        if self.name is not None:
            _check_str("ContentBlock.Document", "name", self.name)
            if not self.name.strip():
                raise ValueError("ContentBlock.Document.name must not be blank; leave it None instead")

    @classmethod
    def from_bytes(cls, raw: bytes, mime_type: str = PDF, name: Optional[str] = None) -> Document:
        """Build from the raw file bytes (they are base64-encoded here)."""
        return cls(base64.b64encode(raw).decode("ascii"), mime_type, name)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.name is not None:
            out["name"] = self.name
        return out


for _c in (Text, Image, Audio, Document):
    setattr(ContentBlock, _c.__name__, _c)
    _c.__qualname__ = f"ContentBlock.{_c.__name__}"
del _c


def first_text(parts: Iterable[ContentBlock]) -> Optional[str]:
    """The first text block that is not blank, stripped; None if there is none."""
    for p in parts:
        if isinstance(p, Text):
            t = p.text.strip()
            if t:
                return t
    return None


def join_text(parts: Iterable[ContentBlock]) -> str:
    """Every text block joined with newlines; media blocks are left out."""
    return "\n".join(p.text for p in parts if isinstance(p, Text))
