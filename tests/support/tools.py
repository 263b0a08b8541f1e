"""Tool definitions the provider tests share."""

from __future__ import annotations

from typing import Any, Dict

from llm_sync import ToolDefinition

__all__ = ["WEATHER", "weather"]


def weather(description: str = "Weather for a city.", *, required: bool = True) -> ToolDefinition:
    """``get_weather(city)``, the tool most provider tests send."""
    schema: Dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}}
    if required:
        schema["required"] = ["city"]
    return ToolDefinition("get_weather", description, schema)


WEATHER = weather()
