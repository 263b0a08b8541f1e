"""``OpenAiProvider``: OpenAI over the Responses API (``POST {base}/responses``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from .._call import Parser
from .._errors import LlmError
from .._keys import setting
from .._tokens import read_count
from .._transport._request import HttpCall
from ._base import Fetch, HttpProvider, count_call, json_body, request_json
from ._responses import COUNT_FIELDS, build_request, classify_error, parse_events

if TYPE_CHECKING:
    from .._context import Context

__all__ = ["OpenAiProvider"]

OPENAI_HOST = "api.openai.com"


class OpenAiProvider(HttpProvider):
    """OpenAI over the Responses API, streamed.

    ``organization`` / ``project`` (else ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``)
    are sent as headers only to api.openai.com: another server behind
    ``OPENAI_BASE_URL`` has no use for them. ``encrypted_reasoning`` forces asking
    for encrypted reasoning on (True) or off (False); None decides by model name.
    """

    provider_id = "openai"
    genai_provider_name = "openai"
    genai_api = "responses"
    label = "OpenAI"
    default_model = "gpt-4.1"
    default_base_url = "https://api.openai.com/v1"
    key_variable = "OPENAI_API_KEY"
    key_required = True
    base_url_variable = "OPENAI_BASE_URL"
    # File inputs (input_file takes PDFs and many other types):
    # https://developers.openai.com/api/docs/guides/file-inputs
    inputs = {"image": None, "document": None}
    # text.format json_schema, tool_choice (word or {"type": "function"}), tools[].strict.
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "none", "required", "tool"})
    strict_tools = True

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        encrypted_reasoning: Optional[bool] = None,
        **options: Any,
    ) -> None:
        """``options`` are every provider's keywords (``model``, ``base_url``, ``timeout``, ...)."""
        super().__init__(api_key, **options)
        self._organization = setting(organization, "OPENAI_ORG_ID")
        self._project = setting(project, "OPENAI_PROJECT_ID")
        self._encrypted_reasoning = encrypted_reasoning

    def request_headers(self) -> Dict[str, str]:
        """The request headers (the key included: never log them)."""
        h = {
            "authorization": f"Bearer {self._api_key}",
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        if urlsplit(self._base_url).hostname == OPENAI_HOST:
            if self._organization:
                h["openai-organization"] = self._organization
            if self._project:
                h["openai-project"] = self._project
        return h

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The request body for ``context`` (what ``stream_response`` sends)."""
        return build_request(
            context,
            self._model,
            reasoning_model=f"{self.provider_id}:{self._model}",
            include_encrypted=self._encrypted_reasoning,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
        )

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return classify_error(status, headers, body, model=self._model, label=self.label, key_variable="OPENAI_API_KEY")

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        call = HttpCall(
            f"{self._base_url}/responses",
            self.request_headers(),
            json_body(self.request_body(context)),
            framing="sse",
        )
        return call, parse_events

    def exact_token_count(self, context: Context, fetch: Fetch) -> Optional[int]:
        """``POST {base}/responses/input_tokens`` with the request's input, instructions, tools and reasoning."""
        call, _ = self.build_call(context)
        request = count_call(call, f"{self._base_url}/responses/input_tokens", request_json(call), keep=COUNT_FIELDS)
        return read_count(fetch(request), "input_tokens", where="OpenAI's responses/input_tokens")
