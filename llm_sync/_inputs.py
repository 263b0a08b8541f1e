"""Which content a provider and its catalog model take: the one check run before any request is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, FrozenSet, Mapping, Optional

from ._content import ContentBlock, Document, Text
from ._errors import UnsupportedContentError
from ._messages import User

if TYPE_CHECKING:
    from ._context import Context
    from ._model import LlmModel

__all__ = ["BEDROCK_DOCUMENTS", "InputTypes", "check_content", "describe", "unsupported"]

#: What a provider takes besides text: content kind (``"image"``, ``"audio"``,
#: ``"document"``) -> the MIME types it takes (None: any; the server decides).
#: A kind that is absent is refused.
InputTypes = Mapping[str, Optional[FrozenSet[str]]]

#: Bedrock Converse ``DocumentBlock.format`` by MIME type (its valid values:
#: pdf, csv, doc, docx, xls, xlsx, html, txt, md).
BEDROCK_DOCUMENTS: Mapping[str, str] = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}

_NOUNS = {"image": "image", "audio": "audio", "document": "document"}
_HINTS = {
    "image": "describe the image in text, or use a model that takes images",
    "audio": "transcribe the audio to text first, or use a provider that takes audio (Gemini, llama.cpp)",
    "document": (
        "extract the document's text and send that, or use a provider that takes documents "
        "(Anthropic, OpenAI, Gemini, Bedrock, OpenRouter)"
    ),
}


def describe(block: ContentBlock) -> str:
    """A short human name for a media block: ``a document block ('q3.pdf', application/pdf, 12 KB)``."""
    kind = block.type
    mime = getattr(block, "mime_type", "")
    size = len(getattr(block, "data", "")) * 3 // 4  # base64 is 4 characters per 3 bytes
    name = getattr(block, "name", None)
    named = f"{name!r}, " if name else ""
    article = "an" if kind[:1] in "aeiou" else "a"
    return f"{article} {kind} block ({named}{mime}, {_size(size)})"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n // 1024} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def unsupported(label: str, block: ContentBlock, where: str = "") -> UnsupportedContentError:
    """The error for a block ``label`` (a provider's name) cannot send; ``where`` says which message."""
    kind = block.type
    return UnsupportedContentError(
        f"{label} does not take {_NOUNS.get(kind, kind)} input: {describe(block)}{where}; "
        f"{_HINTS.get(kind, 'remove the block')}"
    )


def check_content(
    context: Context,
    inputs: InputTypes,
    *,
    label: str,
    provider: str,
    model: str,
    entry: Optional[LlmModel] = None,
) -> None:
    """Raise ``UnsupportedContentError`` for the first user content block that cannot be sent.

    A block is refused when the provider does not take its kind (``inputs``), or not
    its MIME type, or when ``entry`` (the model's catalog entry, when it has one)
    does not list the kind among the model's inputs. The error names the provider,
    the model, the block and the message it is in. Text always passes; a model
    missing from the catalog is left to the server.
    """
    for index, message in enumerate(context.messages):
        if not isinstance(message, User):
            continue  # only user messages carry media
        for block in message.content:
            if isinstance(block, Text):
                continue
            reason = _refusal(block, inputs, label, model, entry)
            if reason is not None:
                raise UnsupportedContentError(
                    f"{reason} (in message {index}, a user message)", provider=provider, model=model or None
                )


def _refusal(
    block: ContentBlock, inputs: InputTypes, label: str, model: str, entry: Optional[LlmModel]
) -> Optional[str]:
    kind = block.type
    noun = _NOUNS.get(kind, kind)
    if kind not in inputs:
        return f"{label} does not take {noun} input: {describe(block)}; {_HINTS.get(kind, 'remove it')}"
    types = inputs[kind]
    mime = getattr(block, "mime_type", "").lower().split(";")[0].strip()
    if types is not None and mime not in types:
        return (
            f"{label} takes {noun} input only as {', '.join(sorted(types))}, not {mime}: "
            f"{describe(block)}; convert it to one of those types first"
        )
    if entry is not None:
        takes = {
            "image": entry.supports_image,
            "audio": entry.supports_audio,
            "document": entry.supports_pdf,
        }.get(kind, True)
        if not takes:
            listed = "pdf" if isinstance(block, Document) else noun
            return (
                f"{model} does not take {noun} input (its catalog entry does not list {listed} among "
                f"the model's inputs): {describe(block)}; pick a model that does "
                f"(llm_sync.all_models() shows each model's inputs), or {_HINTS.get(kind, 'remove it')}"
            )
    return None
