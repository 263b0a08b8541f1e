"""A stand-in LLM on 127.0.0.1 for the docs, the example scripts, Django and the notebook.

``FakeLlmServer`` is the loopback test server (tests/support/server.py) with one addition:
a request that finds no scripted reply is answered by a small deterministic "model" that speaks
the Anthropic Messages stream (``POST /v1/messages``) and the OpenAI chat-completions stream
(``POST .../chat/completions``). Replies queued with ``server.reply(...)`` still go first.

What the model says, from the last user message:

- by default ``"You said: <the prompt>"`` (its first 40 words), one SSE event per word;
- with tools and a fresh user question: a call of the first tool, arguments made from its schema
  (strings ``"Paris"``, numbers ``2``, booleans ``true``); after a tool result:
  ``"The tool says: <result>"``;
- with thinking / a reasoning effort requested: a reasoning block first (Anthropic: signed);
- with an output schema (Anthropic ``output_config.format``, chat ``response_format``
  ``json_schema``): JSON made from the schema the same way, as the answer text;
- a prompt containing ``long``: 200 words, 50 ms apart; ``silent``: headers, then nothing until
  released (``Stall``); ``busy``: 529 overloaded the first time that exact prompt is seen;
- a request body over ``WINDOW_BYTES``: 400 with the provider's context-overflow text
  (``requested`` = body bytes // 4, ``max`` = ``WINDOW_BYTES // 4``).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tests.support.server import LoopbackServer, RecordedRequest, Reply, Sleep, Stall, sse_event

__all__ = ["WINDOW_BYTES", "FakeLlmServer", "answer_for"]

#: Bodies larger than this overflow the fake model's "context window".
WINDOW_BYTES = 24_000
LONG_WORDS = 200
#: Echoes are cut to this many words, so a summary of a long prompt stays short.
ECHO_WORDS = 40


class FakeLlmServer(LoopbackServer):
    """A ``LoopbackServer`` whose unscripted requests are answered by the fake model."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._seen_lock = threading.Lock()
        self._seen: Dict[str, int] = {}
        super().__init__(host)

    def _next_reply(self, req: RecordedRequest) -> Reply:
        if self.pending_replies:
            return super()._next_reply(req)
        try:
            return self._answer(req)
        except Exception as exc:  # a bug here must show up in the test, not hang it
            with self._lock:
                self.errors.append(f"fake model failed on {req.path}: {exc!r}")
            return Reply(status=500, headers={"content-type": "text/plain"}, body=[b"fake model failed"])

    def _first_time(self, key: str) -> bool:
        with self._seen_lock:
            n = self._seen.get(key, 0)
            self._seen[key] = n + 1
        return n == 0

    def _answer(self, req: RecordedRequest) -> Reply:
        path = req.path_only
        body = req.json()
        if path.endswith("/v1/messages"):
            return self._anthropic(body, len(req.body))
        if path.endswith("/v1/messages/count_tokens"):
            # The stand-in's tokenizer: four bytes of request a token, as its usage counts.
            return Reply.json({"input_tokens": len(req.body) // 4})
        if path.endswith("/chat/completions"):
            return self._chat(body, len(req.body))
        return Reply(status=404, headers={"content-type": "text/plain"}, body=[b"unknown path " + path.encode()])

    # -- Anthropic Messages ------------------------------------------------------------

    def _anthropic(self, body: Mapping[str, Any], size: int) -> Reply:
        if size > WINDOW_BYTES:
            err = {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": f"prompt is too long: {size // 4} tokens > {WINDOW_BYTES // 4} maximum",
                },
            }
            return Reply.json(err, status=400)
        messages = body.get("messages") or []
        prompt, tool_result = _anthropic_last(messages)
        if "busy" in prompt and self._first_time("anthropic:" + prompt):
            err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return Reply.json(err, status=529)
        steps: List[Any] = []
        ev = _AnthropicEvents(steps)
        if "silent" in prompt:
            return Reply(
                headers={"content-type": "text/event-stream"}, body=[Stall(10.0)], chunked=True
            )
        ev.add("message_start", {"type": "message_start", "message": {
            "id": f"msg_fake_{len(messages)}", "type": "message", "role": "assistant", "model": body.get("model"),
            "content": [], "stop_reason": None,
            "usage": {"input_tokens": size // 4, "cache_read_input_tokens": 0, "output_tokens": 1}}})
        index = 0
        if body.get("thinking"):
            ev.add("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            for word in _words("Let me think about that step by step."):
                ev.add("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "thinking_delta", "thinking": word}})
            ev.add("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "signature_delta", "signature": "c2lnbmVk"}})
            ev.add("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        tools = body.get("tools") or []
        stop = "end_turn"
        if tools and tool_result is None:
            tool = tools[0]
            args = json.dumps(_arguments(tool.get("input_schema") or {}))
            ev.add("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": f"toolu_{len(messages)}", "name": tool["name"], "input": {}}})
            for piece in _pieces(args):
                ev.add("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "input_json_delta", "partial_json": piece}})
            ev.add("content_block_stop", {"type": "content_block_stop", "index": index})
            stop = "tool_use"
            words: List[str] = []
        else:
            words = _answer_words(prompt, tool_result, ((body.get("output_config") or {}).get("format") or {}).get("schema"))
            ev.add("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
            for word in words:
                ev.add("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": word}})
                if "long" in prompt:
                    steps.append(Sleep(0.05))
            ev.add("content_block_stop", {"type": "content_block_stop", "index": index})
        ev.add("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": max(len(words), 1)}})
        ev.add("message_stop", {"type": "message_stop"})
        return Reply(headers={"content-type": "text/event-stream"}, body=steps, chunked=True)

    # -- OpenAI chat completions ---------------------------------------------------------

    def _chat(self, body: Mapping[str, Any], size: int) -> Reply:
        if size > WINDOW_BYTES:
            err = {"error": {"message": f"This model's maximum context length is {WINDOW_BYTES // 4} tokens. "
                             f"However, your messages resulted in {size // 4} tokens.",
                             "type": "invalid_request_error", "code": "context_length_exceeded"}}
            return Reply.json(err, status=400)
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        tool_result = last.get("content") if last.get("role") == "tool" else None
        prompt = _chat_last_user(messages)
        if "busy" in prompt and self._first_time("chat:" + prompt):
            return Reply.json({"error": {"message": "server overloaded", "type": "server_error"}}, status=503)
        if "silent" in prompt:
            return Reply(headers={"content-type": "text/event-stream"}, body=[Stall(10.0)], chunked=True)
        cid = f"chatcmpl-fake-{len(messages)}"
        steps: List[Any] = []

        def chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> None:
            steps.append(sse_event(None, {"id": cid, "object": "chat.completion.chunk", "model": body.get("model"),
                                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))

        chunk({"role": "assistant", "content": ""})
        if body.get("reasoning_effort"):
            for word in _words("Let me think about that step by step."):
                chunk({"reasoning_content": word})
        tools = body.get("tools") or []
        words: List[str] = []
        if tools and tool_result is None:
            fn = tools[0]["function"]
            args = json.dumps(_arguments(fn.get("parameters") or {}))
            call_id = f"call_{len(messages)}"
            chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                   "function": {"name": fn["name"], "arguments": ""}}]})
            for piece in _pieces(args):
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            finish = "tool_calls"
        else:
            words = _answer_words(prompt, tool_result, ((body.get("response_format") or {}).get("json_schema") or {}).get("schema"))
            for word in words:
                chunk({"content": word})
                if "long" in prompt:
                    steps.append(Sleep(0.05))
            finish = "stop"
        chunk({}, finish)
        steps.append(sse_event(None, {"id": cid, "object": "chat.completion.chunk", "choices": [], "usage": {
            "prompt_tokens": size // 4, "completion_tokens": max(len(words), 1),
            "total_tokens": size // 4 + max(len(words), 1)}}))
        steps.append(sse_event(None, "[DONE]"))
        return Reply(headers={"content-type": "text/event-stream"}, body=steps, chunked=True)


class _AnthropicEvents:
    def __init__(self, steps: List[Any]) -> None:
        self.steps = steps

    def add(self, name: str, data: Mapping[str, Any]) -> None:
        self.steps.append(sse_event(name, data))


def answer_for(prompt: str, tool_result: Optional[str] = None) -> str:
    """What the fake model answers (without the reasoning)."""
    if tool_result is not None:
        return f"The tool says: {tool_result}"
    if "long" in prompt:
        return " ".join(f"word{i}" for i in range(LONG_WORDS))
    words = prompt.split()
    if len(words) > ECHO_WORDS:
        return "You said: " + " ".join(words[:ECHO_WORDS]) + " ..."
    return f"You said: {prompt}"


def _answer_words(prompt: str, tool_result: Optional[str], schema: Optional[Mapping[str, Any]]) -> List[str]:
    if schema is not None:
        return _pieces(json.dumps(_arguments(schema)))
    return _words(answer_for(prompt, tool_result))


def _words(text: str) -> List[str]:
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


def _pieces(text: str, size: int = 7) -> List[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _arguments(schema: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind in ("integer", "number"):
            out[name] = 2
        elif kind == "boolean":
            out[name] = True
        elif kind == "string":
            enum = prop.get("enum")
            out[name] = enum[0] if enum else "Paris"
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _anthropic_last(messages: List[Mapping[str, Any]]) -> Tuple[str, Optional[str]]:
    """(the last user text, the last tool result when the last message carries one)."""
    tool_result: Optional[str] = None
    if messages and messages[-1].get("role") == "user":
        content = messages[-1].get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    tool_result = _text_of(block.get("content"))
    prompt = ""
    for m in reversed(messages):
        if m.get("role") == "user":
            text = _text_of(m.get("content"))
            if text:
                prompt = text
                break
    return prompt, tool_result


def _chat_last_user(messages: List[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            text = _text_of(m.get("content"))
            if text:
                return text
    return ""
