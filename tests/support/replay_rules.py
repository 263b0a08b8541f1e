"""What each provider refuses in a request that replays earlier turns, as a stand-in server checks it.

``problems(dialect, body)`` lists the refusals a real provider would answer with 400 for the JSON
``body`` of a request: a tool call without its result, a result without its call, thinking without
its signature, a reasoning item without its encrypted content or the item after it, an empty
message. The rules are the providers' documented replay rules (the texts quoted are their error
messages); ``reply_checking`` turns them into a reply function for the loopback server.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, Sequence

from tests.support.server import RecordedRequest, Reply

__all__ = ["DIALECTS", "problems", "reply_checking"]


def _anthropic(body: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    messages: Sequence[Any] = body.get("messages") or []
    if messages and messages[0].get("role") != "user":
        out.append("first message must use the user role")
    for i, m in enumerate(messages):
        content = m.get("content")
        if content in ("", []):
            out.append(f"messages.{i}: all messages must have non-empty content")
        blocks = content if isinstance(content, list) else []
        for b in blocks:
            if b.get("type") == "thinking" and not b.get("signature"):
                out.append(f"messages.{i}: thinking block without a signature")
            if b.get("type") == "redacted_thinking" and not b.get("data"):
                out.append(f"messages.{i}: redacted_thinking block without data")
        if m.get("role") != "assistant":
            continue
        uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if not uses:
            continue
        after = messages[i + 1] if i + 1 < len(messages) else None
        results = {
            b.get("tool_use_id")
            for b in (after.get("content") if after and isinstance(after.get("content"), list) else [])
            if b.get("type") == "tool_result"
        }
        missing = [u for u in uses if u not in results]
        if missing:
            out.append(f"messages.{i}: tool_use ids were found without tool_result blocks immediately after: {missing}")
    return out


def _responses(body: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    items: Sequence[Any] = body.get("input") or []
    outputs = {it.get("call_id") for it in items if it.get("type") == "function_call_output"}
    calls = {it.get("call_id") for it in items if it.get("type") == "function_call"}
    for i, it in enumerate(items):
        kind = it.get("type")
        if kind == "function_call" and it.get("call_id") not in outputs:
            out.append(f"input.{i}: No tool output found for function call {it.get('call_id')}")
        if kind == "function_call_output" and it.get("call_id") not in calls:
            out.append(f"input.{i}: No tool call found for function call output {it.get('call_id')}")
        if kind == "reasoning":
            if not it.get("encrypted_content"):
                out.append(f"input.{i}: reasoning item without encrypted_content")
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is None or nxt.get("role") == "user":
                out.append(f"input.{i}: reasoning item was provided without its required following item")
    return out


def _chat(body: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    messages: Sequence[Any] = body.get("messages") or []
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            ids = [c.get("id") for c in m.get("tool_calls") or []]
            answered = set()
            for later in messages[i + 1 :]:
                if later.get("role") != "tool":
                    break
                answered.add(later.get("tool_call_id"))
            if any(x not in answered for x in ids):
                out.append(
                    f"messages.{i}: An assistant message with 'tool_calls' must be followed by tool "
                    "messages responding to each 'tool_call_id'"
                )
            if not m.get("content") and not ids:
                out.append(f"messages.{i}: an assistant message needs content or tool_calls")
        if m.get("role") == "tool":
            before = messages[i - 1] if i else {}
            if before.get("role") not in ("assistant", "tool"):
                out.append(f"messages.{i}: messages with role 'tool' must be a response to a preceding 'tool_calls'")
    return out


def _gemini(body: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    contents: Sequence[Any] = body.get("contents") or []
    for i, c in enumerate(contents):
        parts = c.get("parts") or []
        if not parts:
            out.append(f"contents.{i}: contents.parts must not be empty")
        for p in parts:
            if p.get("thought") and not p.get("thoughtSignature"):
                out.append(f"contents.{i}: a thought part without its thoughtSignature")
        if c.get("role") != "model":
            continue
        calls = [p for p in parts if "functionCall" in p]
        if not calls:
            continue
        nxt = contents[i + 1] if i + 1 < len(contents) else {}
        responses = [p for p in nxt.get("parts") or [] if "functionResponse" in p]
        if len(responses) != len(calls):
            out.append(
                f"contents.{i}: Please ensure that the number of function response parts is equal to "
                "the number of function call parts of the function call turn"
            )
    return out


def _bedrock(body: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    messages: Sequence[Any] = body.get("messages") or []
    for i, m in enumerate(messages):
        if i and messages[i - 1].get("role") == m.get("role"):
            out.append(f"messages.{i}: roles must alternate between user and assistant")
        blocks = m.get("content") or []
        if not blocks:
            out.append(f"messages.{i}: content must not be empty")
        for b in blocks:
            if "text" in b and not b["text"].strip():
                out.append(f"messages.{i}: a blank text block")
            text = (b.get("reasoningContent") or {}).get("reasoningText")
            if text is not None and not text.get("signature"):
                out.append(f"messages.{i}: reasoningText without a signature")
        uses = [b["toolUse"]["toolUseId"] for b in blocks if "toolUse" in b]
        if m.get("role") != "assistant" or not uses:
            continue
        nxt = messages[i + 1] if i + 1 < len(messages) else {}
        results = {b["toolResult"]["toolUseId"] for b in nxt.get("content") or [] if "toolResult" in b}
        missing = [u for u in uses if u not in results]
        if missing:
            out.append(f"messages.{i + 1}: Expected toolResult blocks for the following Ids: {missing}")
    return out


DIALECTS: Dict[str, Callable[[Mapping[str, Any]], List[str]]] = {
    "anthropic": _anthropic,
    "responses": _responses,
    "chat": _chat,
    "gemini": _gemini,
    "bedrock": _bedrock,
}


def problems(dialect: str, body: Mapping[str, Any]) -> List[str]:
    """The refusals a provider speaking ``dialect`` would answer ``body`` with (empty: it accepts it)."""
    return DIALECTS[dialect](body)


def reply_checking(dialect: str, accepted: Reply) -> Callable[[RecordedRequest], Reply]:
    """A reply function: 400 naming the problems when the request breaks a replay rule, else ``accepted``."""

    def answer(req: RecordedRequest) -> Reply:
        found = problems(dialect, req.json())
        if found:
            return Reply.json({"error": {"type": "invalid_request_error", "message": "; ".join(found)}}, status=400)
        return accepted

    return answer


def dumps(body: Any) -> str:
    """The body as compact JSON, for assertion messages."""
    return json.dumps(body, separators=(",", ":"))[:2000]
