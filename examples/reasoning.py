"""Ask a reasoning model to think, show its reasoning dimmed, then ask a follow-up.

``python examples/reasoning.py -m anthropic:claude-sonnet-4-5 --effort high "Is 1001 prime?"``

The follow-up carries the first turn back (``reply.to_message()``), including the provider's
opaque reasoning state where it has one, so the model keeps its train of thought.
"""

from __future__ import annotations

import argparse
import os
import sys

from llm_sync import (
    ChatMessage,
    Context,
    LlmError,
    LlmResponse,
    ReasoningEffort,
    StreamingModelProvider,
    parse_model,
)

DIM, UNDIM = ("\x1b[2m", "\x1b[22m") if sys.stdout.isatty() else ("", "")


def default_model() -> str:
    """$LLM_SYNC_MODEL, else Claude when ANTHROPIC_API_KEY is set, else the embedded local model (no key)."""
    if os.environ.get("LLM_SYNC_MODEL"):
        return os.environ["LLM_SYNC_MODEL"]
    return "anthropic:claude-sonnet-4-5" if os.environ.get("ANTHROPIC_API_KEY") else "local"


def turn(provider: StreamingModelProvider, ctx: Context) -> None:
    thinking = False
    with provider.stream_response(ctx) as stream:
        for chunk in stream:
            if isinstance(chunk, LlmResponse.Reasoning):
                if not thinking:
                    print(f"{DIM}[reasoning] ", end="")
                    thinking = True
                print(chunk.chunk, end="", flush=True)
            elif isinstance(chunk, LlmResponse.Text):
                if thinking:
                    print(f"{UNDIM}\n[answer] ", end="")
                    thinking = False
                print(chunk.chunk, end="", flush=True)
            elif isinstance(chunk, LlmResponse.Usage):
                print(f"\n[{chunk.output_tokens} output tokens, reasoning: {chunk.reasoning_tokens}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-m", "--model", default=default_model())
    parser.add_argument("-e", "--effort", default="high", help="low, medium, high or xhigh")
    parser.add_argument("question", nargs="*", default=["Is 1001 a prime number?"])
    args = parser.parse_args()

    provider, _ = parse_model(args.model)
    ctx = Context([ChatMessage.User(" ".join(args.question))], reasoning_effort=ReasoningEffort.parse(args.effort))
    reply = provider.stream_response(ctx).collect()
    print(f"{DIM}[reasoning] {reply.reasoning}{UNDIM}")
    print(f"[answer] {reply.text}")
    print(f"[opaque reasoning kept for replay: {reply.encrypted_reasoning is not None}]")

    ctx.add_message(reply.to_message())
    ctx.add_message(ChatMessage.User("Explain that in one sentence."))
    turn(provider, ctx)


if __name__ == "__main__":
    try:
        main()
    except (LlmError, ImportError, ValueError, RuntimeError) as err:  # a missing key, extra or model
        sys.exit(f"reasoning.py: {err}")
    except KeyboardInterrupt:
        sys.exit(130)
