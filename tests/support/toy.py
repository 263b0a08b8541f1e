"""A minimal provider with a made-up SSE wire format, so engine tests exercise only the engine.

Each SSE event's data is a JSON object: ``{"type": "start", "id"}``, ``{"type": "text",
"text"}``, ``{"type": "reasoning", "text"}``, ``{"type": "usage", "input", "output"}``,
``{"type": "done", "reason"}``, ``{"type": "ping"}`` (ignored, like a provider keep-alive)
and ``{"type": "error", "kind", "message"}`` (an in-band error: ``overloaded`` is
retryable, anything else is not).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping, Tuple

from llm_sync import LlmResponse, ServerError, StopReason
from llm_sync._errors import ApiError, LlmError
from llm_sync._transport._frame import Frame
from llm_sync._transport._http import default_classifier
from llm_sync._transport._request import HttpCall
from llm_sync.providers._base import HttpProvider, Parser


class ToyProvider(HttpProvider):
    provider_id = "toy"
    label = "Toy"
    default_model = "toy-1"
    default_base_url = "http://127.0.0.1:9"
    key_variable = "TOY_API_KEY"
    key_required = False

    def build_call(self, context: Any) -> Tuple[HttpCall, Parser]:
        body = {"model": self.model_name, "messages": len(context.messages)}
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"

        def classify(status: int, hdrs: Mapping[str, str], text: str) -> LlmError:
            return default_classifier(status, hdrs, text, provider="toy", model=self.model_name)

        call = HttpCall(
            f"{self.base_url}/v1/stream",
            headers,
            json.dumps(body).encode(),
            framing="sse",
            classify=classify,
        )
        return call, parse_toy


def parse_toy(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    for frame in frames:
        event = json.loads(frame.data)
        kind = event["type"]
        if kind == "start":
            yield LlmResponse.Start(event["id"])
        elif kind == "text":
            yield LlmResponse.Text(event["text"])
        elif kind == "reasoning":
            yield LlmResponse.Reasoning(event["text"])
        elif kind == "usage":
            yield LlmResponse.Usage(event["input"], event["output"])
        elif kind == "done":
            yield LlmResponse.Done(StopReason.END_TURN, event.get("reason"))
        elif kind == "error":
            if event["kind"] == "overloaded":
                raise ServerError(event["message"])
            raise ApiError(event["message"])


def start(id: str = "m1") -> dict[str, Any]:
    return {"type": "start", "id": id}


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def reasoning(t: str) -> dict[str, Any]:
    return {"type": "reasoning", "text": t}


def done(reason: str = "end_turn") -> dict[str, Any]:
    return {"type": "done", "reason": reason}


PING = {"type": "ping"}
