"""The bytes the bench server sends: Anthropic and OpenAI chat-completions streams, pre-rendered."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

# Short text pieces (about one token each), cycled. One is non-ASCII and one is a
# newline, so every client pays for UTF-8 decoding and JSON escapes like a real answer.
PIECES = (" The", " river", " Nile", " flows", " north", ",", " past", " Cairo", ".",
          "\n", " Caf", "\u00e9", " au", " lait", " is", " a", " drink", " too", "!", " ok")

OPENAI_ID = "chatcmpl-bench000000000000000000000001"
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_ID = "msg_bench0000000000000000001"
ANTHROPIC_MODEL = "claude-sonnet-4-5"

# Bulk framing cuts the same SSE bytes into HTTP chunks of this size.
BULK_SIZE = 65536


def pieces(n: int) -> List[str]:
    """The ``n`` text deltas a stream of ``n`` chunks carries, in order."""
    k = len(PIECES)
    return [PIECES[i % k] for i in range(n)]


def expected_text(n: int) -> str:
    return "".join(pieces(n))


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def openai_events(n: int, usage: bool, texts: Optional[List[str]] = None) -> List[bytes]:
    """One ``data:`` event per chunk, shaped like the real API's (all its fields), then [DONE].

    ``texts`` replaces the default deltas (``pieces(n)``); its length is ``n``.
    """
    head = {"id": OPENAI_ID, "object": "chat.completion.chunk", "created": 1764000000,
            "model": OPENAI_MODEL, "service_tier": "default", "system_fingerprint": "fp_bench"}

    def event(delta: Optional[Dict[str, Any]], finish: Optional[str] = None,
              usage_obj: Optional[Dict[str, Any]] = None) -> bytes:
        obj: Dict[str, Any] = dict(head)
        obj["choices"] = [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if usage:
            # With include_usage the API puts "usage": null on every chunk but the last.
            obj["usage"] = usage_obj
        obj["obfuscation"] = "Xy12"
        return b"data: " + _json(obj) + b"\n\n"

    out = [event({"role": "assistant", "content": "", "refusal": None})]
    out.extend(event({"content": p}) for p in (pieces(n) if texts is None else texts))
    out.append(event({}, finish="stop"))
    if usage:
        out.append(event(None, usage_obj={
            "prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}))
    out.append(b"data: [DONE]\n\n")
    return out


def anthropic_events(n: int, texts: Optional[List[str]] = None) -> List[bytes]:
    """message_start, content_block_start, ping, n text deltas, then the closing events."""

    def event(name: str, obj: Dict[str, Any]) -> bytes:
        return b"event: " + name.encode("ascii") + b"\ndata: " + _json(obj) + b"\n\n"

    out = [
        event("message_start", {"type": "message_start", "message": {
            "id": ANTHROPIC_ID, "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 9, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1,
                      "service_tier": "standard"}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}}),
        event("ping", {"type": "ping"}),
    ]
    out.extend(event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": p}})
               for p in (pieces(n) if texts is None else texts))
    out.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(event("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"output_tokens": n}}))
    out.append(event("message_stop", {"type": "message_stop"}))
    return out


def events(api: str, n: int, usage: bool, texts: Optional[List[str]] = None) -> List[bytes]:
    return openai_events(n, usage, texts) if api == "openai" else anthropic_events(n, texts)


def head(api: str) -> bytes:
    """Status line and headers of a streamed answer (chunked, keep-alive)."""
    extra = (b"x-request-id: req_bench\r\nopenai-processing-ms: 1\r\n" if api == "openai"
             else b"request-id: req_bench\r\nanthropic-organization-id: bench\r\n")
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\nconnection: keep-alive\r\ncache-control: no-cache\r\n"
            + extra + b"\r\n")


def chunked(parts: List[bytes]) -> bytes:
    """``parts`` as HTTP/1.1 chunks (no terminating chunk)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)


def response(api: str, n: int, framing: str, usage: bool) -> bytes:
    """The whole response: ``event`` framing sends one HTTP chunk per SSE event (as an API
    that flushes every token does); ``bulk`` cuts the same bytes into 64 KiB chunks."""
    evs = events(api, n, usage)
    if framing == "bulk":
        body = b"".join(evs)
        evs = [body[i:i + BULK_SIZE] for i in range(0, len(body), BULK_SIZE)]
    elif framing != "event":
        raise ValueError(f"framing must be 'event' or 'bulk', not {framing!r}")
    return head(api) + chunked(evs) + b"0\r\n\r\n"


def stalled_prefix(api: str) -> bytes:
    """What a server that then falls silent has sent: the opening events and one text delta."""
    evs = events(api, 1, False)
    keep = 2 if api == "openai" else 4  # up to and including the first text delta
    return head(api) + chunked(evs[:keep])
