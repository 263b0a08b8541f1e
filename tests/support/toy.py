"""A complete small provider with a made-up SSE wire format, written only against public names.

docs/adding-a-provider.rst walks through it; the engine tests use it to exercise only the engine.
Each SSE event's data is a JSON object: ``{"type": "start", "id"}``, ``{"type": "text",
"text"}``, ``{"type": "reasoning", "text"}``, ``{"type": "tool", "id", "name", "arguments"}``,
``{"type": "usage", "input", "output"}``, ``{"type": "done", "reason"}``, ``{"type": "ping"}``
(ignored, like a provider keep-alive) and ``{"type": "error", "kind", "message"}`` (an in-band
error: ``overloaded`` is retryable, anything else is not).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple

from llm_sync import ApiError, Context, LlmResponse, ServerError, StopReason
from llm_sync.providers import Frame, HttpCall, HttpProvider, Parser, Turn, decode_event, json_body

# -- the provider ---------------------------------------------------------------------------


class ToyProvider(HttpProvider):
    provider_id = "toy"
    label = "Toy"
    default_model = "toy-1"
    default_base_url = "http://127.0.0.1:9"
    key_variable = "TOY_API_KEY"
    key_required = False

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = {"model": self.model_name, "messages": len(context.messages)}
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return HttpCall(f"{self.base_url}/v1/stream", headers, json_body(body), framing="sse"), parse_toy


def parse_toy(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    turn = Turn()
    for frame in frames:
        event = decode_event(frame)
        kind = event.get("type")
        if kind == "start":
            yield turn.start(event.get("id"), "toy-")
        elif kind == "text":
            yield LlmResponse.Text(event["text"])
        elif kind == "reasoning":
            yield LlmResponse.Reasoning(event["text"])
        elif kind == "tool":
            # A whole call in one event: the kit streams its arguments as one piece.
            yield from turn.calls.open(event["id"], event["id"], event["name"])
            yield from turn.calls.close(event["id"], event.get("arguments"))
        elif kind == "usage":
            turn.usage = LlmResponse.Usage(event["input"], event["output"])
        elif kind == "done":
            yield from turn.end(StopReason.END_TURN, event.get("reason"))
            return
        elif kind == "error":
            if event["kind"] == "overloaded":
                raise ServerError(event["message"])
            raise ApiError(event["message"])


# -- the end of the provider; below, helpers that write its events for tests -------------------


def start(id: str = "m1") -> Dict[str, Any]:
    return {"type": "start", "id": id}


def text(t: str) -> Dict[str, Any]:
    return {"type": "text", "text": t}


def reasoning(t: str) -> Dict[str, Any]:
    return {"type": "reasoning", "text": t}


def done(reason: str = "end_turn") -> Dict[str, Any]:
    return {"type": "done", "reason": reason}


PING = {"type": "ping"}
