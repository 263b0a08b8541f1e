"""A chat-completions stand-in for many-request tests: it answers each prompt with ``echo: <prompt>``.

It runs as the reply function of a :class:`LoopbackServer` and records every request
(arrival time, prompt, status); a test scripts refusals by request number
(``refuse={10: (429, {"retry-after": "2"})}``) or by load (``capacity=4``: a request
that arrives while four answers are being sent gets ``overload_status``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from llm_sync.providers import OpenAiCompatibleProvider
from tests.support.server import LoopbackServer, RecordedRequest, Reply, Sleep, sse_event

__all__ = ["Arrival", "EchoModel", "prompt_of"]


class Arrival:
    """One request as the stand-in saw it."""

    __slots__ = ("at", "prompt", "status", "number")

    def __init__(self, at: float, prompt: str, status: int, number: int) -> None:
        self.at = at  # time.monotonic() when it arrived
        self.prompt = prompt
        self.status = status
        self.number = number  # 1-based, in arrival order

    def __repr__(self) -> str:
        return f"Arrival(#{self.number} {self.prompt!r} -> {self.status} at {self.at:.3f})"


def prompt_of(req: RecordedRequest) -> str:
    """The text of the last user message of a chat-completions request."""
    messages = req.json()["messages"]
    content = messages[-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


class EchoModel:
    """Answers ``echo: <prompt>`` after ``delay`` seconds, unless scripted or loaded to refuse.

    ``first=(n, seconds)``: the first ``n`` answers take ``seconds`` instead.
    """

    def __init__(
        self,
        server: LoopbackServer,
        *,
        delay: float = 0.0,
        first: Tuple[int, float] = (0, 0.0),
        refuse: Optional[Mapping[int, Tuple[int, Mapping[str, str]]]] = None,
        capacity: Optional[int] = None,
        overload_status: int = 503,
        overload_until: Optional[int] = None,
        fail_prompts: Optional[Mapping[str, int]] = None,
        replies: int = 2000,
    ) -> None:
        self.server = server
        self.delay = delay
        self.first = first  # (n, seconds): the first n answers take this long instead
        self.refuse = dict(refuse or {})
        self.capacity = capacity
        self.overload_status = overload_status
        self.overload_until = overload_until  # capacity applies to requests up to this number only
        self.fail_prompts = dict(fail_prompts or {})  # prompt -> status it always gets
        self.lock = threading.Lock()
        self.arrivals: List[Arrival] = []
        self.busy_until: List[float] = []  # end times of the answers being sent
        server.reply(*[self._answer] * replies)

    def provider(self, **kw: Any) -> OpenAiCompatibleProvider:
        return OpenAiCompatibleProvider(base_url=f"{self.server.url}/v1", model="m", **kw)

    # -- what the tests read ------------------------------------------------------------------

    def prompts(self, status: Optional[int] = 200) -> List[str]:
        with self.lock:
            return [a.prompt for a in self.arrivals if status is None or a.status == status]

    def snapshot(self) -> List[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def peak_in_flight(self, after: int = 0) -> int:
        """The most answers the stand-in was sending at once, among requests numbered above ``after``."""
        with self.lock:
            spans = [(a.at, a.at + self._delay(a.number)) for a in self.arrivals if a.status == 200 and a.number > after]
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
        peak = now = 0
        for _, step in events:
            now += step
            peak = max(peak, now)
        return peak

    def _delay(self, number: int) -> float:
        return self.first[1] if number <= self.first[0] else self.delay

    # -- the reply function --------------------------------------------------------------------

    def _answer(self, req: RecordedRequest) -> Reply:
        prompt = prompt_of(req)
        now = time.monotonic()
        with self.lock:
            number = len(self.arrivals) + 1
            self.busy_until = [t for t in self.busy_until if t > now]
            status, headers = 200, {}
            if number in self.refuse:
                status, headers = self.refuse[number]
            elif prompt in self.fail_prompts:
                status = self.fail_prompts[prompt]
            elif (
                self.capacity is not None
                and (self.overload_until is None or number <= self.overload_until)
                and len(self.busy_until) >= self.capacity
            ):
                status = self.overload_status
            delay = self._delay(number)
            if status == 200:
                self.busy_until.append(now + delay)
            self.arrivals.append(Arrival(now, prompt, status, number))
        if status != 200:
            body = {"error": {"message": f"refused with {status}", "type": "rate_limit_error" if status == 429 else "server_error"}}
            return Reply.json(body, status=status, headers=dict(headers))
        return Reply(
            status=200,
            headers={"content-type": "text/event-stream"},
            body=[Sleep(delay), *_events(prompt)] if delay else _events(prompt),
            chunked=True,
        )


def _events(prompt: str) -> List[bytes]:
    def chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse_event(None, {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]})

    usage = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
             "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
    return [
        chunk({"role": "assistant", "content": "echo: "}),
        chunk({"content": prompt}),
        chunk({}, "stop"),
        sse_event(None, usage),
        b"data: [DONE]\n\n",
    ]

