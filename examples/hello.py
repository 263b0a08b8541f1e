"""Stream one answer to the terminal: ``python examples/hello.py -m anthropic:claude-sonnet-4-5 "Hi"``.

The model string picks the provider (its key comes from the environment or a ``.env``);
``openai-compatible:MODEL@http://host:port/v1`` reaches any chat-completions server.
"""

from __future__ import annotations

import argparse
import os

from llm_sync import ChatMessage, Context, LlmResponse, parse_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-m", "--model", default=os.environ.get("LLM_SYNC_MODEL", "anthropic:claude-sonnet-4-5"))
    parser.add_argument("prompt", nargs="*", default=["Name three rivers."])
    args = parser.parse_args()

    provider, _ = parse_model(args.model)
    ctx = Context([ChatMessage.User(" ".join(args.prompt))])
    print(f"[{provider.display_name()}]")
    with provider.stream_response(ctx) as stream:
        for chunk in stream:
            if isinstance(chunk, LlmResponse.Text):
                print(chunk.chunk, end="", flush=True)
            elif isinstance(chunk, LlmResponse.Usage):
                usage = chunk
    print(f"\n[{usage.input_tokens} tokens in, {usage.output_tokens} out]")


if __name__ == "__main__":
    main()
