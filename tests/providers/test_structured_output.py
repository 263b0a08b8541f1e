"""Structured output and tool control on every provider, over loopback HTTP in each provider's own wire format.

For each provider: the output schema reaches the request in the provider's native
field (or as the forced tool, or as JSON mode); the streamed answer gives
``collect().parsed``; a cut, a refusal, prose and a reply missing a field give
``StructuredOutputError`` with their reasons; ``tool_choice`` and ``strict`` land in
the provider's own fields, and what a provider cannot express is an
``ApiRequestError`` on first iteration with nothing sent.

The streams are written by hand after real ones: Anthropic's ``output_config`` text
and forced-tool ``json`` streams and its ``refusal`` stop (vercel/ai's
``anthropic-json-output-format``, ``anthropic-json-tool`` and ``anthropic-refusal``
fixtures), Gemini's pretty-printed ``responseJsonSchema`` answer (pydantic-ai's
``test_gemini_native_output`` cassette), chat completions' ``delta.refusal``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import pytest

from llm_sync import (
    ApiRequestError,
    ChatMessage,
    CollectedResponse,
    Context,
    LlmResponse,
    StopReason,
    StructuredOutputError,
    ToolDefinition,
)
from llm_sync._transport._eventstream import event_frame
from llm_sync.providers import HttpProvider
from llm_sync.providers.anthropic import AnthropicProvider
from llm_sync.providers.bedrock import BedrockProvider
from llm_sync.providers.codex import CodexProvider
from llm_sync.providers.gemini import GeminiProvider
from llm_sync.providers.llamacpp import LlamaCppProvider
from llm_sync.providers.ollama import OllamaProvider
from llm_sync.providers.openai import OpenAiProvider
from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider
from llm_sync.providers.openrouter import OpenRouterProvider
from llm_sync.providers.presets import DeepSeekProvider, MoonshotProvider, ZaiProvider
from tests.support.invariants import turn_problems
from tests.support.server import LoopbackServer, Reply, ndjson, sse
from tests.support.toy import ToyProvider

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
ANSWER = {"city": "Lima", "population": 9751717}
# Streamed in uneven pieces, as models do.
PIECES = ['{"', 'city":"Li', 'ma","popu', 'lation":975', "1717}"]
WEATHER = ToolDefinition(
    "get_weather",
    "Weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False},
    strict=True,
)
PLAIN = ToolDefinition("get_time", "The time.", {"type": "object", "properties": {}})


def question() -> Context:
    ctx = Context([ChatMessage.System("Answer briefly."), ChatMessage.User("Largest city of Peru, and its population?")])
    ctx.set_output_schema(CITY, name="city")
    return ctx


# ---------------------------------------------------------------------------
# The wire formats: (pieces of the answer, how it ends) -> body bytes.
# "end": a normal end; "length": the token limit; "refusal": the model declines.

USAGE_CHAT = {"prompt_tokens": 31, "completion_tokens": 14, "total_tokens": 45}


def chat_text(pieces: List[str], end: str) -> bytes:
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events: List[Any] = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    field = "refusal" if end == "refusal" else "content"
    for p in pieces:
        events.append({**head, "choices": [{"index": 0, "delta": {field: p}, "finish_reason": None}]})
    finish = "length" if end == "length" else "stop"
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    events.append({**head, "choices": [], "usage": USAGE_CHAT})
    events.append("[DONE]")
    return sse(*events)


def chat_tool(pieces: List[str], end: str) -> bytes:
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = {"index": 0, "id": "call_0", "type": "function", "function": {"name": "city", "arguments": ""}}
    events: List[Any] = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}, "finish_reason": None}]}]
    for p in pieces:
        events.append({**head, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}, "finish_reason": None}]})
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "length" if end == "length" else "tool_calls"}]})
    events.append({**head, "choices": [], "usage": USAGE_CHAT})
    events.append("[DONE]")
    return sse(*events)


def responses(pieces: List[str], end: str) -> bytes:
    def ev(e: Dict[str, Any]) -> Any:
        return (e["type"], e)

    out = [ev({"type": "response.created", "response": {"id": "resp_9", "status": "in_progress"}})]
    out.append(ev({"type": "response.output_item.added", "output_index": 0, "item": {"id": "msg_9", "type": "message", "role": "assistant", "content": []}}))
    kind = "response.refusal.delta" if end == "refusal" else "response.output_text.delta"
    for p in pieces:
        out.append(ev({"type": kind, "item_id": "msg_9", "output_index": 0, "content_index": 0, "delta": p}))
    usage = {"input_tokens": 40, "output_tokens": 12, "output_tokens_details": {"reasoning_tokens": 0}}
    if end == "length":
        response = {"id": "resp_9", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "usage": usage}
        out.append(ev({"type": "response.incomplete", "response": response}))
    else:
        out.append(ev({"type": "response.completed", "response": {"id": "resp_9", "status": "completed", "usage": usage}}))
    return sse(*out)


def anthropic_start() -> Any:
    usage = {"input_tokens": 313, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
    message = {"id": "msg_01Kbeod", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": None, "usage": usage}
    return ("message_start", {"type": "message_start", "message": message})


def anthropic_end(reason: str) -> List[Any]:
    delta: Dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": {"output_tokens": 47}}
    if reason == "refusal":
        delta["delta"]["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": "blocked under the usage policy"}
    return [("message_delta", delta), ("message_stop", {"type": "message_stop"})]


def anthropic_text(pieces: List[str], end: str) -> bytes:
    if end == "refusal":  # what the API sends: no content block, just the stop
        return sse(anthropic_start(), ("ping", {"type": "ping"}), *anthropic_end("refusal"))
    out = [anthropic_start(), ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})]
    for i, p in enumerate(pieces):
        out.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}))
        if i == 1:
            out.append(("ping", {"type": "ping"}))
    out.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    return sse(*out, *anthropic_end("max_tokens" if end == "length" else "end_turn"))


def anthropic_tool(pieces: List[str], end: str) -> bytes:
    block = {"type": "tool_use", "id": "toolu_01KFb", "name": "city", "input": {}}
    out = [anthropic_start(), ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})]
    out.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}}))
    for p in pieces:
        out.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}))
    out.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    return sse(*out, *anthropic_end("max_tokens" if end == "length" else "tool_use"))


GEMINI_USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 20, "totalTokenCount": 28}


def gemini_text(pieces: List[str], end: str) -> bytes:
    if end == "refusal":
        return sse({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "SAFETY", "index": 0}], "usageMetadata": GEMINI_USAGE, "responseId": "r9"})
    events = [{"candidates": [{"content": {"parts": [{"text": p}], "role": "model"}, "index": 0}], "responseId": "r9"} for p in pieces]
    events[-1]["candidates"][0]["finishReason"] = "MAX_TOKENS" if end == "length" else "STOP"
    events[-1]["usageMetadata"] = GEMINI_USAGE
    return sse(*events)


def gemini_tool(pieces: List[str], end: str) -> bytes:
    args = json.loads("".join(pieces))  # Gemini sends a call's arguments whole
    part = {"functionCall": {"name": "city", "args": args}}
    return sse({"candidates": [{"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": GEMINI_USAGE, "responseId": "r9"})


def ollama_text(pieces: List[str], end: str) -> bytes:
    lines: List[Any] = [
        {"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": p}, "done": False}
        for p in pieces
    ]
    lines.append(
        {"model": "llama3.2", "created_at": "2026-01-01T00:00:01Z", "message": {"role": "assistant", "content": ""}, "done": True,
         "done_reason": "length" if end == "length" else "stop", "prompt_eval_count": 30, "eval_count": 14}
    )
    return ndjson(*lines)


def _bedrock_tail(reason: str) -> bytes:
    usage = {"inputTokens": 30, "outputTokens": 14, "totalTokens": 44}
    return event_frame("messageStop", json.dumps({"stopReason": reason})) + event_frame(
        "metadata", json.dumps({"usage": usage, "metrics": {"latencyMs": 300}})
    )


def bedrock_text(pieces: List[str], end: str) -> bytes:
    out = event_frame("messageStart", json.dumps({"role": "assistant"}))
    if end != "refusal":
        for p in pieces:
            out += event_frame("contentBlockDelta", json.dumps({"contentBlockIndex": 0, "delta": {"text": p}}))
        out += event_frame("contentBlockStop", json.dumps({"contentBlockIndex": 0}))
    reason = {"end": "end_turn", "length": "max_tokens", "refusal": "content_filtered"}[end]
    return out + _bedrock_tail(reason)


def bedrock_tool(pieces: List[str], end: str) -> bytes:
    out = event_frame("messageStart", json.dumps({"role": "assistant"}))
    start = {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_9", "name": "city"}}}
    out += event_frame("contentBlockStart", json.dumps(start))
    for p in pieces:
        out += event_frame("contentBlockDelta", json.dumps({"contentBlockIndex": 0, "delta": {"toolUse": {"input": p}}}))
    out += event_frame("contentBlockStop", json.dumps({"contentBlockIndex": 0}))
    return out + _bedrock_tail("max_tokens" if end == "length" else "tool_use")


# ---------------------------------------------------------------------------
# The providers.

CONTENT_TYPES = {"sse": "text/event-stream", "ndjson": "application/x-ndjson", "eventstream": "application/vnd.amazon.eventstream"}


def _codex_token() -> str:
    import base64

    def part(obj: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"exp": 4102444800, "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature-0123456789"


@dataclass(frozen=True)
class Wire:
    """One provider as configured for a route, its body writer, and where the schema lands."""

    id: str
    make: Callable[[str], HttpProvider]  # base URL -> provider
    framing: str
    body: Callable[[List[str], str], bytes]
    route: str  # "native", "tool" or "json"
    sent: Callable[[Dict[str, Any]], Any]  # request body -> what carries the schema
    expected: Any
    refuses: bool = True  # the wire format has a refusal or filter stop


def _response_format(body: Dict[str, Any]) -> Any:
    return body.get("response_format")


NATIVE_CHAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
RESPONSES_FORMAT = {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}


def _chat_forced(body: Dict[str, Any]) -> Any:
    (tool,) = body["tools"]
    return (tool["function"]["name"], tool["function"]["parameters"], tool["function"]["strict"], body["tool_choice"], "response_format" in body)


def _json_mode(body: Dict[str, Any]) -> Any:
    system = [m["content"] for m in body["messages"] if m["role"] == "system"]
    roles = [m["role"] for m in body["messages"]]
    return (body["response_format"], roles, "JSON Schema" in system[1] and json.dumps(CITY, separators=(",", ":")) in system[1])


def _anthropic_forced(body: Dict[str, Any]) -> Any:
    (tool,) = body["tools"]
    return (tool["name"], tool["input_schema"], "strict" in tool, body["tool_choice"], "output_config" in body)


def _bedrock_native(body: Dict[str, Any]) -> Any:
    fmt = body["outputConfig"]["textFormat"]
    js = fmt["structure"]["jsonSchema"]
    return (fmt["type"], js["name"], json.loads(js["schema"]))


def _bedrock_forced(body: Dict[str, Any]) -> Any:
    (tool,) = body["toolConfig"]["tools"]
    return (tool["toolSpec"]["name"], tool["toolSpec"]["inputSchema"]["json"], body["toolConfig"]["toolChoice"], "outputConfig" in body)


def _gemini_forced(body: Dict[str, Any]) -> Any:
    decls = body["tools"][0]["functionDeclarations"]
    return ([d["name"] for d in decls], decls[-1]["parametersJsonSchema"], body["toolConfig"], "responseJsonSchema" in body.get("generationConfig", {}))


WIRES = [
    Wire("openai", lambda u: OpenAiProvider("sk-test", base_url=u + "/v1", model="gpt-4.1"), "sse", responses, "native",
         lambda b: b["text"]["format"], RESPONSES_FORMAT),
    Wire("codex", lambda u: CodexProvider(_codex_token(), base_url=u + "/backend-api/codex"), "sse", responses, "native",
         lambda b: b["text"], {"format": RESPONSES_FORMAT, "verbosity": "medium"}),
    Wire("openai_compatible", lambda u: OpenAiCompatibleProvider(base_url=u + "/v1", model="m"), "sse", chat_text, "native",
         _response_format, NATIVE_CHAT),
    Wire("openrouter", lambda u: OpenRouterProvider("sk-or-test", base_url=u + "/api/v1"), "sse", chat_text, "native",
         lambda b: (b["response_format"], b["provider"]), (NATIVE_CHAT, {"require_parameters": True})),
    Wire("llamacpp", lambda u: LlamaCppProvider(base_url=u), "sse", chat_text, "native", _response_format, NATIVE_CHAT),
    Wire("deepseek", lambda u: DeepSeekProvider("sk-ds", base_url=u), "sse", chat_tool, "tool", _chat_forced,
         ("city", CITY, True, {"type": "function", "function": {"name": "city"}}, False)),
    Wire("moonshot", lambda u: MoonshotProvider("sk-ms", base_url=u + "/v1"), "sse", chat_text, "json", _json_mode,
         ({"type": "json_object"}, ["system", "system", "user"], True)),
    Wire("zai", lambda u: ZaiProvider("zai-key", base_url=u), "sse", chat_text, "json", _json_mode,
         ({"type": "json_object"}, ["system", "system", "user"], True)),
    Wire("anthropic", lambda u: AnthropicProvider("sk-ant", base_url=u, model="claude-sonnet-4-5"), "sse", anthropic_text, "native",
         lambda b: b["output_config"], {"format": {"type": "json_schema", "schema": CITY}}),
    Wire("anthropic-3.7", lambda u: AnthropicProvider("sk-ant", base_url=u, model="claude-3-7-sonnet-20250219"), "sse", anthropic_tool, "tool",
         _anthropic_forced, ("city", CITY, False, {"type": "tool", "name": "city"}, False)),
    Wire("gemini", lambda u: GeminiProvider("g-key", base_url=u, model="gemini-2.5-flash"), "ndjson", gemini_text, "native",
         lambda b: (b["generationConfig"]["responseMimeType"], b["generationConfig"]["responseJsonSchema"]), ("application/json", CITY)),
    Wire("ollama", lambda u: OllamaProvider(base_url=u, model="llama3.2"), "ndjson", ollama_text, "native",
         lambda b: b["format"], CITY, refuses=False),
    Wire("bedrock", lambda u: BedrockProvider("ABSKkey0123456789", base_url=u, region="us-east-1", model="us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
         "eventstream", bedrock_text, "native", _bedrock_native, ("json_schema", "city", CITY)),
    Wire("bedrock-claude-3.7", lambda u: BedrockProvider("ABSKkey0123456789", base_url=u, region="us-east-1", model="us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
         "eventstream", bedrock_tool, "tool", _bedrock_forced, ("city", CITY, {"tool": {"name": "city"}}, False)),
]
BY_ID = {w.id: w for w in WIRES}


def run(server: LoopbackServer, wire: Wire, body: bytes, context: Optional[Context] = None) -> CollectedResponse:
    server.reply(Reply(status=200, headers={"content-type": CONTENT_TYPES[wire.framing]}, body=[body], chunked=True))
    provider = wire.make(server.url)
    with provider.stream_response(context or question()) as stream:
        chunks = list(stream)
    assert turn_problems(chunks, None) == []
    # The forced tool's call never shows as a call.
    assert not any(isinstance(c, LlmResponse.ToolRequestStart) and c.name == "city" for c in chunks)
    # collect() of the same chunks, as a caller would get them.
    server.reply(Reply(status=200, headers={"content-type": CONTENT_TYPES[wire.framing]}, body=[body], chunked=True))
    with provider.stream_response(context or question()) as stream:
        return stream.collect()


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_the_schema_goes_out_in_the_native_field_and_parsed_is_the_answer(server: LoopbackServer, wire: Wire) -> None:
    reply = run(server, wire, wire.body(PIECES, "end"))
    sent = server.requests[0].json()
    assert wire.sent(sent) == wire.expected
    assert reply.parsed == ANSWER
    assert json.loads(reply.text) == ANSWER and reply.tool_calls == ()
    assert reply.stop_reason is StopReason.END_TURN  # also on the forced-tool route
    assert reply.usage is not None and reply.usage.output_tokens > 0


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_a_reply_cut_by_the_token_limit_is_truncated(server: LoopbackServer, wire: Wire) -> None:
    reply = run(server, wire, wire.body(PIECES[:3], "length"))
    with pytest.raises(StructuredOutputError) as info:
        _ = reply.parsed
    err = info.value
    assert err.reason == "truncated" and err.text == "".join(PIECES[:3]) and err.path is None
    assert (err.provider, err.model) == (reply.provider, reply.model)


@pytest.mark.parametrize("wire", [w for w in WIRES if w.refuses and w.route != "tool"], ids=lambda w: w.id)
def test_a_refusal_is_refused(server: LoopbackServer, wire: Wire) -> None:
    words = ["I can't help ", "with that."]
    reply = run(server, wire, wire.body(words, "refusal"))
    assert reply.stop_reason is StopReason.CONTENT_FILTER
    with pytest.raises(StructuredOutputError) as info:
        _ = reply.parsed
    assert info.value.reason == "refused" and info.value.text == reply.text


@pytest.mark.parametrize("wire", [w for w in WIRES if w.route != "tool"], ids=lambda w: w.id)
def test_prose_is_invalid_json(server: LoopbackServer, wire: Wire) -> None:
    reply = run(server, wire, wire.body(["Lima, with ", "9.7 million people."], "end"))
    with pytest.raises(StructuredOutputError) as info:
        _ = reply.parsed
    assert info.value.reason == "invalid_json" and info.value.text == "Lima, with 9.7 million people."


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.id)
def test_a_missing_field_is_a_schema_mismatch(server: LoopbackServer, wire: Wire) -> None:
    reply = run(server, wire, wire.body(['{"city":', '"Lima","population":"many"}'], "end"))
    with pytest.raises(StructuredOutputError) as info:
        _ = reply.parsed
    err = info.value
    assert err.reason == "schema_mismatch" and err.path == "/population" and "is not of type 'integer'" in str(err)


def test_the_forced_tool_keeps_the_callers_tools_and_requires_a_call(server: LoopbackServer) -> None:
    # DeepSeek with a tool of the caller's: both offered, some call required; the
    # caller's call surfaces as a tool call, the answer tool's never does.
    wire = BY_ID["deepseek"]
    ctx = question()
    ctx.set_tools([WEATHER])
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    call = {"index": 0, "id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Lima"}'}}
    body = sse(
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        "[DONE]",
    )
    reply = run(server, wire, body, ctx)
    sent = server.requests[0].json()
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "city"]
    assert sent["tool_choice"] == "required" and sent["tools"][0]["function"]["strict"] is True
    assert [c.name for c in reply.tool_calls] == ["get_weather"] and reply.stop_reason is StopReason.TOOL_CALLS
    with pytest.raises(StructuredOutputError, match="send their results"):
        _ = reply.parsed


def test_gemini_before_3_with_tools_sends_the_schema_as_a_function(server: LoopbackServer) -> None:
    wire = Wire("gemini-2.5-tools", BY_ID["gemini"].make, "ndjson", gemini_tool, "tool", _gemini_forced, None)
    ctx = question()
    ctx.set_tools([PLAIN])
    reply = run(server, wire, gemini_tool(PIECES, "end"), ctx)
    assert wire.sent(server.requests[0].json()) == (["get_time", "city"], CITY, {"functionCallingConfig": {"mode": "ANY"}}, False)
    assert reply.parsed == ANSWER and reply.stop_reason is StopReason.END_TURN
    # Gemini 3 combines them: the native field, and the tools as they are.
    g3 = GeminiProvider("g-key", base_url=server.url, model="gemini-3-pro-preview")
    call, _ = g3.prepare_call(ctx)
    body = json.loads(call.body)
    assert body["generationConfig"]["responseJsonSchema"] == CITY and "toolConfig" not in body


# ---------------------------------------------------------------------------
# tool_choice and strict in each provider's own fields.

TOOLS_CTX = [WEATHER, PLAIN]


def body_for(provider: HttpProvider, choice: Optional[str], tools: Any = TOOLS_CTX) -> Dict[str, Any]:
    ctx = Context([ChatMessage.User("Weather in Lima?")], tools)
    ctx.set_tool_choice(choice)
    call, _ = provider.prepare_call(ctx)
    return json.loads(call.body)  # type: ignore[no-any-return]


CHAT_CHOICES = {"auto": "auto", "none": "none", "required": "required", "get_time": {"type": "function", "function": {"name": "get_time"}}}
RESPONSES_CHOICES = {"auto": "auto", "none": "none", "required": "required", "get_time": {"type": "function", "name": "get_time"}}
CHOICE_CASES = [
    ("openai", lambda b: b["tool_choice"], RESPONSES_CHOICES, lambda b: [t.get("strict") for t in b["tools"]], [True, False]),
    ("codex", lambda b: b["tool_choice"], RESPONSES_CHOICES, lambda b: [t.get("strict") for t in b["tools"]], [True, None]),
    ("openai_compatible", lambda b: b["tool_choice"], CHAT_CHOICES, lambda b: [t["function"]["strict"] for t in b["tools"]], [True, False]),
    ("openrouter", lambda b: b["tool_choice"], CHAT_CHOICES, lambda b: [t["function"]["strict"] for t in b["tools"]], [True, False]),
    ("deepseek", lambda b: b["tool_choice"], CHAT_CHOICES, lambda b: [t["function"]["strict"] for t in b["tools"]], [True, False]),
    ("anthropic", lambda b: b["tool_choice"],
     {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}, "get_time": {"type": "tool", "name": "get_time"}},
     lambda b: [t.get("strict") for t in b["tools"]], [True, None]),
    ("gemini", lambda b: b.get("toolConfig"),
     {"auto": {"functionCallingConfig": {"mode": "VALIDATED"}}, "none": {"functionCallingConfig": {"mode": "NONE"}},
      "required": {"functionCallingConfig": {"mode": "ANY"}},
      "get_time": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}},
     lambda b: None, None),
    ("bedrock", lambda b: b["toolConfig"].get("toolChoice"),
     {"auto": {"auto": {}}, "required": {"any": {}}, "get_time": {"tool": {"name": "get_time"}}},
     lambda b: [t["toolSpec"].get("strict") for t in b["toolConfig"]["tools"]], [True, None]),
]


@pytest.mark.parametrize(("wire_id", "read", "choices", "strict_of", "strict"), CHOICE_CASES, ids=[c[0] for c in CHOICE_CASES])
def test_tool_choice_and_strict_in_the_native_fields(wire_id: str, read: Any, choices: Any, strict_of: Any, strict: Any) -> None:
    provider = BY_ID[wire_id].make("http://127.0.0.1:9")
    for choice, expected in choices.items():
        body = body_for(provider, choice)
        assert read(body) == expected, choice
        if strict is not None:
            assert strict_of(body) == strict
    plain = body_for(provider, None)
    assert "tool_choice" not in plain and "toolChoice" not in plain.get("toolConfig", {})


def test_gemini_without_strict_tools_sends_auto_only_when_asked() -> None:
    provider = BY_ID["gemini"].make("http://127.0.0.1:9")
    assert "toolConfig" not in body_for(provider, None, [PLAIN])
    assert body_for(provider, "auto", [PLAIN])["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_llamacpp_sends_words_and_a_named_tool_as_that_tool_required() -> None:
    provider = BY_ID["llamacpp"].make("http://127.0.0.1:9")
    for word in ("auto", "none", "required"):
        assert body_for(provider, word)["tool_choice"] == word
    named = body_for(provider, "get_time")
    assert named["tool_choice"] == "required" and [t["function"]["name"] for t in named["tools"]] == ["get_time"]
    assert [t["function"]["strict"] for t in body_for(provider, "auto")["tools"]] == [True, False]


def test_ollama_sends_none_by_leaving_the_tools_out() -> None:
    provider = BY_ID["ollama"].make("http://127.0.0.1:9")
    assert "tools" not in body_for(provider, "none", [PLAIN])
    body = body_for(provider, "auto", [PLAIN])
    assert [t["function"]["name"] for t in body["tools"]] == ["get_time"] and "tool_choice" not in body


REFUSED = [
    ("ollama", "required", [PLAIN], "cannot express tool_choice 'required'"),
    ("ollama", "get_time", [PLAIN], "cannot express tool_choice 'get_time'"),
    ("ollama", None, [WEATHER], "cannot hold tool arguments to their schema"),
    ("moonshot", "required", [PLAIN], "cannot express tool_choice 'required'"),
    ("moonshot", None, [WEATHER], "strict=True on 'get_weather'"),
    ("zai", "none", [PLAIN], "cannot express tool_choice 'none'"),
    ("bedrock", "none", [PLAIN], "cannot express tool_choice 'none'"),
    ("anthropic-3.7", None, [WEATHER], "cannot hold tool arguments to their schema"),
    ("openai", "get_wether", [PLAIN], "names no tool of the context"),
]


@pytest.mark.parametrize(("wire_id", "choice", "tools", "words"), REFUSED, ids=[f"{r[0]}-{r[1]}-{r[2][0].name}" for r in REFUSED])
def test_what_a_provider_cannot_express_fails_on_first_iteration_with_nothing_sent(
    server: LoopbackServer, wire_id: str, choice: Optional[str], tools: Any, words: str
) -> None:
    provider = BY_ID[wire_id].make(server.url)
    ctx = Context([ChatMessage.User("Weather in Lima?")], tools)
    ctx.set_tool_choice(choice)
    stream = provider.stream_response(ctx)
    with pytest.raises(ApiRequestError, match=words) as info:
        next(iter(stream))
    assert info.value.provider == provider.provider_id
    assert server.requests == []


@pytest.mark.parametrize("wire_id", ["anthropic", "bedrock"])
def test_claude_cannot_force_a_tool_while_thinking(server: LoopbackServer, wire_id: str) -> None:
    provider = BY_ID[wire_id].make(server.url)
    ctx = Context([ChatMessage.User("Weather in Lima?")], [PLAIN], reasoning_effort="low")
    ctx.set_tool_choice("required")
    with pytest.raises(ApiRequestError, match="while thinking"):
        provider.stream_response(ctx).collect()
    # The same on the forced-tool route of a model before 4.5.
    old = BY_ID[f"{wire_id}-claude-3.7" if wire_id == "bedrock" else "anthropic-3.7"].make(server.url)
    ctx = question()
    ctx.set_reasoning_effort("low")
    with pytest.raises(ApiRequestError, match="output schema on a"):
        old.stream_response(ctx).collect()
    assert server.requests == []
    # "auto" goes with thinking.
    ctx = Context([ChatMessage.User("x")], [PLAIN], reasoning_effort="low")
    ctx.set_tool_choice("auto")
    call, _ = provider.prepare_call(ctx)
    body = json.loads(call.body)
    assert body.get("tool_choice", body.get("toolConfig", {}).get("toolChoice")) in ({"type": "auto"}, {"auto": {}})


def test_a_provider_that_declares_nothing_refuses_every_setting_before_sending(server: LoopbackServer) -> None:
    # The docs' toy provider, written against the public kit only, maps none of these.
    toy = ToyProvider(base_url=server.url, timeout=5)
    for setting in ("schema", "required", "strict"):
        ctx = Context([ChatMessage.User("x")], [WEATHER if setting == "strict" else PLAIN])
        if setting == "schema":
            ctx.set_output_schema(CITY)
        elif setting == "required":
            ctx.set_tool_choice("required")
        with pytest.raises(ApiRequestError, match="Toy"):
            toy.stream_response(ctx).collect()
    assert server.requests == []


def test_the_cloud_deployments_send_their_dialects_fields() -> None:
    # Azure OpenAI (both APIs) and Vertex AI (Gemini, Claude) build the bodies of the
    # dialects they carry, so the same native fields; Vertex's Claude ids carry "@date".
    from llm_sync.providers.azure import AzureOpenAiProvider
    from llm_sync.providers.vertex import VertexAnthropicProvider, VertexGeminiProvider

    def body(provider: HttpProvider, ctx: Context) -> Dict[str, Any]:
        call, _ = provider.prepare_call(ctx)
        return json.loads(call.body)  # type: ignore[no-any-return]

    url = "http://127.0.0.1:9"
    chat = AzureOpenAiProvider("azkey-0123456789abcdef", model="gpt-4o", base_url=url + "/openai/v1")
    assert body(chat, question())["response_format"] == NATIVE_CHAT
    assert body(chat.with_api("responses"), question())["text"]["format"] == RESPONSES_FORMAT
    gem = VertexGeminiProvider("ya29.token", model="gemini-2.5-flash", project="p", base_url=url)
    assert body(gem, question())["generationConfig"]["responseJsonSchema"] == CITY
    claude = VertexAnthropicProvider("ya29.token", model="claude-sonnet-4-5@20250929", project="p", base_url=url)
    assert body(claude, question())["output_config"] == {"format": {"type": "json_schema", "schema": CITY}}
    old = VertexAnthropicProvider("ya29.token", model="claude-3-7-sonnet@20250219", project="p", base_url=url)
    sent = body(old, question())
    assert "output_config" not in sent and sent["tool_choice"] == {"type": "tool", "name": "city"}
    ctx = Context([ChatMessage.User("x")], [PLAIN])
    ctx.set_tool_choice("get_time")
    assert body(chat, ctx)["tool_choice"] == CHAT_CHOICES["get_time"]
    assert body(claude, ctx)["tool_choice"] == {"type": "tool", "name": "get_time"}
