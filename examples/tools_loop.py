"""A tool loop: the model calls Python functions until it can answer.

``python examples/tools_loop.py -m anthropic:claude-sonnet-4-5 "What is the weather in Paris?"``

It needs a model that calls tools: the embedded local model cannot, and the script says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Dict, Tuple

from llm_sync import (
    ChatMessage,
    Context,
    LlmError,
    StreamingModelProvider,
    ToolArgumentsError,
    ToolCallError,
    ToolCallResult,
    ToolDefinition,
    parse_model,
)


def default_model() -> str:
    """$LLM_SYNC_MODEL, else Claude when ANTHROPIC_API_KEY is set, else the embedded local model (no key)."""
    if os.environ.get("LLM_SYNC_MODEL"):
        return os.environ["LLM_SYNC_MODEL"]
    return "anthropic:claude-sonnet-4-5" if os.environ.get("ANTHROPIC_API_KEY") else "local"


def get_weather(city: str) -> str:
    return f"sunny and 21 degrees in {city}"


def add(a: float, b: float) -> str:
    return str(a + b)


TOOLS: Dict[str, Tuple[ToolDefinition, Callable[..., str]]] = {
    "get_weather": (
        ToolDefinition(
            "get_weather",
            "The current weather in a city.",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        ),
        get_weather,
    ),
    "add": (
        ToolDefinition(
            "add",
            "Add two numbers.",
            {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
        ),
        add,
    ),
}


def run(provider: StreamingModelProvider, question: str, max_turns: int = 8) -> str:
    ctx = Context([ChatMessage.User(question)], tools=[tool for tool, _ in TOOLS.values()])
    for _ in range(max_turns):
        with provider.stream_response(ctx) as stream:
            reply = stream.collect()
        ctx.add_message(reply.to_message())
        if not reply.tool_calls:
            return reply.text
        for call in reply.tool_calls:
            result: Any
            try:
                tool, function = TOOLS[call.name]
                args = call.validate(tool)
                result = ToolCallResult.from_request(call, function(**args))
                print(f"  -> {call.name}({args}) = {result.result}")
            except (KeyError, ToolArgumentsError, TypeError) as err:
                result = ToolCallError.from_request(call, f"cannot call {call.name}: {err}")
                print(f"  -> {call.name} failed: {err}")
            ctx.add_message(ChatMessage.ToolCallResult(result))
    raise RuntimeError(f"no answer after {max_turns} turns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-m", "--model", default=default_model())
    parser.add_argument("question", nargs="*", default=["What is the weather in Paris?"])
    args = parser.parse_args()
    if args.model.split(":")[0].strip() == "local":
        # Said before loading it: the small embedded model was never taught to call tools.
        sys.exit(
            "tools_loop.py: the embedded local model cannot call tools; pass -m with a model that "
            "can (e.g. -m anthropic:claude-sonnet-4-5 with ANTHROPIC_API_KEY set, or -m ollama:qwen3:8b)"
        )
    provider, _ = parse_model(args.model)
    print(run(provider, " ".join(args.question)))


if __name__ == "__main__":
    try:
        main()
    except (LlmError, ImportError, ValueError, RuntimeError) as err:  # a missing key, extra or model
        sys.exit(f"tools_loop.py: {err}")
    except KeyboardInterrupt:
        sys.exit(130)
