"""Documents on the wire: each provider's native document shape, and the one content check that refuses the rest."""

from __future__ import annotations

import base64
from typing import Any, Dict, List

import pytest

from llm_sync import (
    ApiError,
    ChatMessage,
    ContentBlock,
    Context,
    UnsupportedContentError,
)
from llm_sync.providers.anthropic import AnthropicProvider
from llm_sync.providers.azure import AzureOpenAiProvider
from llm_sync.providers.bedrock import BedrockProvider, DocumentNames
from llm_sync.providers.codex import CodexProvider
from llm_sync.providers.gemini import GeminiProvider
from llm_sync.providers.llamacpp import LlamaCppProvider
from llm_sync.providers.ollama import OllamaProvider
from llm_sync.providers.openai import OpenAiProvider
from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider
from llm_sync.providers.openrouter import OpenRouterProvider
from llm_sync.providers.presets import DeepSeekProvider
from llm_sync.providers.vertex import VertexAnthropicProvider, VertexGeminiProvider
from tests.support.server import LoopbackServer, Reply

KEY = "sk-test-documents-0123456789"
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PDF = ContentBlock.Document.from_bytes(PDF_BYTES, name="Q3 report.pdf")
DATA_URI = "data:application/pdf;base64," + base64.b64encode(PDF_BYTES).decode()
REFUSED = Reply.json({"error": {"type": "invalid_request_error", "message": "stop here"}}, status=400)


def ask(*blocks: ContentBlock) -> Context:
    return Context([ChatMessage.System("Be brief."), ChatMessage.User([ContentBlock.Text("Summarise it."), *blocks])])


def sent(server: LoopbackServer, provider: Any, context: Context) -> Dict[str, Any]:
    """The JSON body ``provider`` sends for ``context`` (the server refuses it with a 400)."""
    server.reply(REFUSED)
    with pytest.raises(ApiError):
        list(provider.stream_response(context))
    assert len(server.requests) == 1
    body: Dict[str, Any] = server.requests[0].json()
    return body


def test_anthropic_document_block(server: LoopbackServer) -> None:
    text_doc = ContentBlock.Document.from_bytes("notes: ünï".encode(), "text/plain")
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=0)
    body = sent(server, p, ask(PDF, text_doc))
    assert body["messages"][0]["content"][1:] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF.data},
            "title": "Q3 report.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes: ünï"}},
    ]


def test_responses_input_file(server: LoopbackServer) -> None:
    p = OpenAiProvider(KEY, model="gpt-4.1", base_url=f"{server.url}/v1", max_retries=0)
    unnamed = ContentBlock.Document(PDF.data)
    body = sent(server, p, ask(PDF, unnamed))
    assert body["input"][0]["content"][1:] == [
        {"type": "input_file", "filename": "Q3 report.pdf", "file_data": DATA_URI},
        {"type": "input_file", "filename": "document.pdf", "file_data": DATA_URI},
    ]


@pytest.mark.parametrize("cls", [OpenAiCompatibleProvider, OpenRouterProvider])
def test_chat_completions_file_part(server: LoopbackServer, cls: Any) -> None:
    model = "anthropic/claude-haiku-4.5" if cls is OpenRouterProvider else "any-model"
    p = cls(KEY, model=model, base_url=server.url, max_retries=0)
    body = sent(server, p, ask(PDF))
    assert body["messages"][1]["content"][1] == {
        "type": "file",
        "file": {"filename": "Q3 report.pdf", "file_data": DATA_URI},
    }


def test_gemini_inline_data(server: LoopbackServer) -> None:
    p = GeminiProvider(KEY, model="gemini-2.5-flash", base_url=server.url + "/v1beta", max_retries=0)
    body = sent(server, p, ask(PDF))
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "application/pdf", "data": PDF.data}}


def test_bedrock_document_with_names_made_valid_and_unique(server: LoopbackServer) -> None:
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    p = BedrockProvider(
        KEY, model="anthropic.claude-sonnet-4-5-20250929-v1:0", region="us-east-1", base_url=server.url, max_retries=0
    )
    context = Context(
        [
            ChatMessage.User([ContentBlock.Document(PDF.data, name="my_report v2.final.pdf"), ContentBlock.Text("a")]),
            ChatMessage.Assistant("read it"),
            ChatMessage.User(
                [
                    ContentBlock.Document(PDF.data, name="MY_REPORT v2.final.pdf"),  # the same name, other case
                    ContentBlock.Document(PDF.data),
                    ContentBlock.Document(PDF.data, docx),
                    ContentBlock.Document(PDF.data, name="x" * 300 + ".pdf"),
                    ContentBlock.Text("compare them"),
                ]
            ),
        ]
    )
    body = sent(server, p, context)
    docs: List[Dict[str, Any]] = [
        b["document"] for m in body["messages"] for b in m["content"] if "document" in b
    ]
    assert [d["name"] for d in docs] == ["my report v2 final", "MY REPORT v2 final (2)", "document", "document (2)", "x" * 200]
    assert [d["format"] for d in docs] == ["pdf", "pdf", "pdf", "docx", "pdf"]
    assert docs[0]["source"] == {"bytes": PDF.data}


def test_bedrock_names_repeat_within_the_length_limit() -> None:
    names = DocumentNames()
    long = ContentBlock.Document(PDF.data, name="y" * 250)
    assert names.name(long) == "y" * 200
    second = names.name(long)
    assert second == "y" * 196 + " (2)" and len(second) == 200
    assert names.name(ContentBlock.Document(PDF.data, name="../..//")) == "document"


# -- refusals: one check, before anything is sent ----------------------------------------


@pytest.mark.parametrize(
    ("make", "block", "words"),
    [
        (lambda url: OllamaProvider(base_url=url, model="qwen3:8b"), PDF, ["Ollama does not take document input", "'Q3 report.pdf'"]),
        (lambda url: LlamaCppProvider(base_url=url), PDF, ["llama.cpp does not take document input"]),
        (
            lambda url: AnthropicProvider(KEY, base_url=url),
            ContentBlock.Document(PDF.data, "application/msword"),
            ["Anthropic takes document input only as application/pdf, text/plain, not application/msword"],
        ),
        (
            lambda url: OpenAiCompatibleProvider(KEY, model="m", base_url=url),
            ContentBlock.Document(PDF.data, "text/plain"),
            ["takes document input only as application/pdf"],
        ),
        (
            lambda url: CodexProvider("token", model="gpt-5", base_url=url),
            PDF,
            ["gpt-5 does not take document input", "does not list pdf"],
        ),
        (
            lambda url: OpenAiProvider(KEY, model="gpt-4", base_url=url),
            ContentBlock.Image("iVBORw0KGgo=", "image/png"),
            ["gpt-4 does not take image input"],
        ),
        (
            lambda url: DeepSeekProvider(KEY, base_url=url),
            ContentBlock.Image("iVBORw0KGgo=", "image/png"),
            ["deepseek-chat does not take image input"],
        ),
        (
            lambda url: AnthropicProvider(KEY, base_url=url),
            ContentBlock.Audio("UklGRg==", "audio/wav"),
            ["Anthropic does not take audio input", "transcribe"],
        ),
        (
            lambda url: OpenRouterProvider(KEY, model="anthropic/claude-haiku-4.5", base_url=url),
            ContentBlock.Audio("UklGRg==", "audio/wav"),
            ["OpenRouter does not take audio input"],
        ),
    ],
)
def test_content_a_provider_or_model_cannot_take_is_refused_before_sending(
    server: LoopbackServer, make: Any, block: ContentBlock, words: List[str]
) -> None:
    provider = make(server.url)
    context = ask(block)
    with pytest.raises(UnsupportedContentError) as info:
        list(provider.stream_response(context))
    err = info.value
    assert err.provider == provider.provider_id and (err.model or "") == provider.model_name
    text = str(err)
    for w in words:
        assert w in text
    assert "in message 1, a user message" in text and f"provider={provider.provider_id}" in text
    # count_tokens runs the same check, and nothing was sent by either.
    with pytest.raises(UnsupportedContentError):
        provider.count_tokens(context)
    assert server.requests == []


def test_what_providers_take_is_sent(server: LoopbackServer) -> None:
    # Gemini takes audio and documents; a model missing from the catalog is left to the server.
    audio = ContentBlock.Audio("UklGRg==", "audio/ogg")
    p = GeminiProvider(KEY, model="gemini-2.5-flash", base_url=server.url + "/v1beta", max_retries=0)
    assert sent(server, p, ask(audio, PDF))["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "audio/ogg"
    unknown = OpenAiProvider(KEY, model="gpt-unlisted-9", base_url=f"{server.url}/v1", max_retries=0)
    assert unknown.model() is None
    server.reply(REFUSED)
    with pytest.raises(ApiError):
        list(unknown.stream_response(ask(PDF)))


def test_documents_survive_persistence() -> None:
    context = ask(PDF, ContentBlock.Document("aGk=", "text/plain"))
    restored = Context.from_dict(context.to_dict())
    assert restored == context
    blocks = restored.messages[1].content  # type: ignore[attr-defined]
    assert blocks[1] == PDF and blocks[1].name == "Q3 report.pdf"
    assert blocks[2].mime_type == "text/plain" and blocks[2].name is None
    assert context.to_dict()["messages"][1]["content"][1] == {
        "type": "document",
        "data": PDF.data,
        "mime_type": "application/pdf",
        "name": "Q3 report.pdf",
    }


@pytest.mark.parametrize(
    ("make", "where", "expected"),
    [
        (
            lambda url: VertexAnthropicProvider(
                "ya29.test-token", model="claude-sonnet-4-5@20250929", project="proj", base_url=url, max_retries=0
            ),
            lambda body: body["messages"][0]["content"][1]["type"],
            "document",
        ),
        (
            lambda url: VertexGeminiProvider(
                "ya29.test-token", model="gemini-2.5-flash", project="proj", base_url=url, max_retries=0
            ),
            lambda body: body["contents"][0]["parts"][1]["inlineData"]["mimeType"],
            "application/pdf",
        ),
        (
            lambda url: AzureOpenAiProvider(
                KEY, model="my-gpt-4o", base_url=url, max_retries=0
            ),
            lambda body: body["messages"][1]["content"][1]["type"],
            "file",
        ),
        (
            lambda url: AzureOpenAiProvider(
                KEY, model="my-gpt-4o", base_url=url, api="responses", max_retries=0
            ),
            lambda body: body["input"][0]["content"][1]["type"],
            "input_file",
        ),
    ],
)
def test_cloud_deployments_send_their_dialects_document_shape(
    server: LoopbackServer, make: Any, where: Any, expected: str
) -> None:
    assert where(sent(server, make(server.url), ask(PDF))) == expected
