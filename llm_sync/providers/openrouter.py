"""OpenRouter (``POST {OPENROUTER_BASE_URL}/chat/completions``) over the compatible chat engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, Mapping, Optional, TypeVar

from ._chat import build_request
from .openai_compatible import OpenAiCompatibleProvider

if TYPE_CHECKING:
    from .._context import Context

__all__ = ["OpenRouterProvider", "build_openrouter_request"]

R = TypeVar("R", bound="OpenRouterProvider")


def build_openrouter_request(
    context: Context,
    model: str,
    *,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The chat-completions body plus OpenRouter's fields.

    ``usage.include`` asks for the usage (with cost) on the last chunk; top-level
    ``cache_control`` turns on automatic prompt caching where the upstream supports
    it; the reasoning effort goes in OpenRouter's own ``reasoning.effort`` (which it
    maps to each upstream's knob); earlier reasoning text goes back as ``reasoning``
    and this model's ``reasoning_details`` (signatures, encrypted blocks) as they came.
    With an output schema, ``provider.require_parameters`` keeps the request away from
    upstreams that would drop ``response_format`` silently (an ``extra`` ``provider``
    replaces it).
    """
    body = build_request(
        context,
        model,
        reasoning_effort=False,
        reasoning_field="reasoning",
        replay_for=f"{OpenRouterProvider.provider_id}:{model}",
        max_tokens=max_tokens,
        temperature=temperature,
    )
    body["usage"] = {"include": True}
    body["cache_control"] = {"type": "ephemeral"}
    if context.reasoning_effort is not None:
        body["reasoning"] = {"effort": context.reasoning_effort.value}
    if context.output_schema is not None:
        body["provider"] = {"require_parameters": True}
    if extra:
        body.update(extra)
    return body


class OpenRouterProvider(OpenAiCompatibleProvider):
    """OpenRouter: one key (``OPENROUTER_API_KEY``) for many upstream models.

    ``app_url`` and ``app_title`` are sent as OpenRouter's attribution headers
    (``HTTP-Referer`` and ``X-Title``), which put the app on openrouter.ai's
    rankings; leave them None to send neither. The ``: OPENROUTER PROCESSING``
    keep-alive comments never reach the parser (nor reset the idle timeout), and an
    ``{"error": ...}`` chunk in the stream is raised as its typed error.
    """

    provider_id: ClassVar[str] = "openrouter"
    label: ClassVar[str] = "OpenRouter"
    # The auto-router: a valid model name, so a provider can be built without one.
    default_model: ClassVar[str] = "openrouter/auto"
    default_base_url: ClassVar[str] = "https://openrouter.ai/api/v1"
    key_variable: ClassVar[Optional[str]] = "OPENROUTER_API_KEY"
    key_required: ClassVar[bool] = True
    base_url_variable: ClassVar[Optional[str]] = "OPENROUTER_BASE_URL"
    reasoning_field: ClassVar[Optional[str]] = "reasoning"
    keeps_reasoning_details: ClassVar[bool] = True

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        app_url: Optional[str] = None,
        app_title: Optional[str] = None,
        **options: Any,
    ) -> None:
        """``options`` are OpenAiCompatibleProvider's (``model``, ``base_url``, ``timeout``, ...)."""
        super().__init__(api_key, **options)
        self._app_url = app_url
        self._app_title = app_title

    @property
    def app_url(self) -> Optional[str]:
        return self._app_url

    @property
    def app_title(self) -> Optional[str]:
        return self._app_title

    def with_attribution(self: R, app_url: Optional[str] = None, app_title: Optional[str] = None) -> R:
        """A copy sending ``HTTP-Referer: app_url`` and ``X-Title: app_title`` (None: not sent)."""
        return self._replace(_app_url=app_url, _app_title=app_title)

    def request_body(self, context: Context) -> Dict[str, Any]:
        return build_openrouter_request(
            context,
            self._model,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            extra=self._extra_body,
        )

    def request_headers(self) -> Dict[str, str]:
        headers = super().request_headers()
        if self._app_url:
            headers.setdefault("HTTP-Referer", self._app_url)
        if self._app_title:
            headers.setdefault("X-Title", self._app_title)
        return headers
