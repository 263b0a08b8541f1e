"""``OpenAiCompatibleProvider``: any server that speaks the chat-completions dialect."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, Dict, FrozenSet, Mapping, Optional, Tuple, TypeVar

from .._call import Parser
from .._errors import LlmError
from .._keys import setting
from .._timeouts import TimeoutSpec
from .._transport._request import HttpCall
from ._base import HttpProvider, json_body
from ._chat import AUDIO_TYPES, SchemaTransform, build_request, classify_error, parse_events

if TYPE_CHECKING:
    from .._context import Context

__all__ = ["OpenAiCompatibleProvider"]

C = TypeVar("C", bound="OpenAiCompatibleProvider")


class OpenAiCompatibleProvider(HttpProvider):
    """Any server with an OpenAI-style ``POST {base_url}/chat/completions`` (vLLM, LM Studio, Groq, ...).

    ``base_url`` is the prefix up to and including ``/v1`` (or whatever the server
    uses); it is required unless ``OPENAI_COMPATIBLE_BASE_URL`` is set. ``api_key`` is
    optional (``OPENAI_COMPATIBLE_API_KEY``) and sent as a bearer token when given.
    ``headers`` are added to every request; ``extra_body`` is merged into every body
    (``{"top_p": 0.9}``, a server's own options).

    Subclasses (the DeepSeek / Moonshot / Z.ai presets, OpenRouter, llama.cpp) change
    the class attributes below and, for body changes, :meth:`request_body`.
    """

    provider_id: ClassVar[str] = "openai_compatible"
    genai_api: ClassVar[Optional[str]] = "chat_completions"
    label: ClassVar[str] = "OpenAI-compatible"
    default_model: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    key_variable: ClassVar[Optional[str]] = "OPENAI_COMPATIBLE_API_KEY"
    key_required: ClassVar[bool] = False
    base_url_variable: ClassVar[Optional[str]] = "OPENAI_COMPATIBLE_BASE_URL"
    #: Appended to ``base_url``.
    chat_path: ClassVar[str] = "/chat/completions"
    #: Ask for the usage chunk (``stream_options.include_usage``).
    include_usage: ClassVar[bool] = True
    #: Send ``Context.reasoning_effort`` as top-level ``reasoning_effort``.
    send_reasoning_effort: ClassVar[bool] = True
    #: Send ``Context.prompt_cache_key`` as ``prompt_cache_key``.
    send_prompt_cache_key: ClassVar[bool] = False
    #: The assistant-message field that carries reasoning text back (None: not sent).
    reasoning_field: ClassVar[Optional[str]] = "reasoning_content"
    #: Send ``"."`` as reasoning on tool-call turns that have none (thinking models need it).
    reasoning_placeholder: ClassVar[bool] = False
    #: Accept wav/mp3 audio as ``input_audio`` parts (else UnsupportedContentError).
    accepts_audio: ClassVar[bool] = False
    #: Collect ``reasoning_details`` into one EncryptedReasoning and replay it.
    keeps_reasoning_details: ClassVar[bool] = False
    #: Applied to each tool's parameter schema (a copy) before sending.
    schema_transform: ClassVar[Optional[SchemaTransform]] = None
    # Chat completions take images and PDFs (a "file" part; PDF only):
    # https://developers.openai.com/api/docs/guides/file-inputs ; audio per accepts_audio.
    inputs: ClassVar[Mapping[str, Optional[FrozenSet[str]]]] = {
        "image": None,
        "document": frozenset({"application/pdf"}),
    }
    #: The output schema goes in ``response_format`` as ``json_schema`` (``"json"``:
    #: ``json_object`` plus the schema as an instruction, for servers without it).
    output_schema_route: ClassVar[Optional[str]] = "native"
    tool_choices: ClassVar[FrozenSet[str]] = frozenset({"auto", "none", "required", "tool"})
    #: Each function's ``strict`` is sent as the tool says.
    strict_tools: ClassVar[bool] = True

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if (
            base_url is None
            and isinstance(api_key, str)
            and api_key.startswith(("http://", "https://"))
        ):
            # OpenAiCompatibleProvider("http://localhost:8000/v1"): an address is never a key.
            base_url, api_key = api_key, None
        if not self.default_base_url:
            found = setting(base_url, self.base_url_variable) if self.base_url_variable else base_url
            if not found:
                raise ValueError(
                    f"{self.label} needs the server address: pass "
                    "base_url='http://host:port/v1' (the prefix before /chat/completions)"
                    + (f" or set {self.base_url_variable}" if self.base_url_variable else "")
                )
        super().__init__(
            api_key,
            model=model,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        self._headers: Dict[str, str] = dict(headers or {})
        self._extra_body: Dict[str, Any] = dict(extra_body or {})

    def with_headers(self: C, headers: Mapping[str, str]) -> C:
        """A copy that also sends ``headers`` (added to those already set)."""
        merged = dict(self._headers)
        merged.update(headers)
        return self._replace(_headers=merged)

    # -- the request ---------------------------------------------------------

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The JSON body for ``context``; override to add provider fields."""
        return build_request(
            context,
            self._model,
            include_usage=self.include_usage,
            reasoning_effort=self.send_reasoning_effort,
            prompt_cache_key=self.send_prompt_cache_key,
            reasoning_field=self.reasoning_field,
            reasoning_placeholder=self.reasoning_placeholder,
            audio=self.accepts_audio,
            schema_transform=type(self).schema_transform,
            replay_for=f"{self.provider_id}:{self._model}" if self.keeps_reasoning_details else None,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            extra=self._extra_body,
            json_mode=self.output_schema_route == "json",
        )

    def request_headers(self) -> Dict[str, str]:
        """The request headers (the key included: never log them)."""
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        headers.update(self._headers)
        return headers

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return classify_error(
            status, headers, body, model=self._model, label=self.label, key_variable=self.key_variable
        )

    def input_types(self) -> Mapping[str, Optional[FrozenSet[str]]]:
        """:attr:`inputs`, plus wav/mp3 audio when :attr:`accepts_audio`."""
        if self.accepts_audio:
            return {**self.inputs, "audio": AUDIO_TYPES}
        return self.inputs

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        call = HttpCall(
            self._base_url + self.chat_path,
            self.request_headers(),
            json_body(self.request_body(context)),
            framing="sse",
        )
        if self.keeps_reasoning_details:
            return call, functools.partial(parse_events, keep_reasoning_details=True)
        return call, parse_events
