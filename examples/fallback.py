"""Fall back to the next provider when one fails before answering.

``python examples/fallback.py -m anthropic:claude-sonnet-4-5,openai:gpt-4.1 "Hello"``

An ``AlloyedModelProvider`` sends each request to its next provider in turn; calling it again
after a failure therefore tries the next one. Only failures *before* any content are retried
here: once text reached the user, starting over elsewhere would repeat it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from llm_sync import (
    AlloyedModelProvider,
    ChatMessage,
    Context,
    LlmError,
    LlmResponse,
    StreamingModelProvider,
    parse_model,
)


def build(models: List[str], max_retries: int) -> AlloyedModelProvider:
    providers: List[StreamingModelProvider] = []
    for spec in models:
        provider, _ = parse_model(spec)
        with_retries = getattr(provider, "with_max_retries", None)
        providers.append(with_retries(max_retries) if with_retries else provider)
    return AlloyedModelProvider(providers)


def answer(alloy: AlloyedModelProvider, ctx: Context) -> str:
    failures = []
    for _ in range(len(alloy.providers)):
        name = alloy.display_name()  # the provider the next request goes to
        started = False
        try:
            with alloy.stream_response(ctx) as stream:
                parts = []
                for chunk in stream:
                    if isinstance(chunk, LlmResponse.Text):
                        started = True
                        parts.append(chunk.chunk)
                        print(chunk.chunk, end="", flush=True)
                print(f"\n[answered by {name}]")
                return "".join(parts)
        except LlmError as err:
            if started:
                raise  # content reached the user: do not start over elsewhere
            print(f"[{name} failed: {type(err).__name__}; trying the next provider]", file=sys.stderr)
            failures.append(err)
    raise RuntimeError(f"every provider failed: {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "-m", "--models", default=os.environ.get("LLM_SYNC_MODEL", "anthropic:claude-sonnet-4-5,openai:gpt-4.1"),
        help="model strings separated by commas, tried in order",
    )
    parser.add_argument("--max-retries", type=int, default=1, help="retries within one provider")
    parser.add_argument("prompt", nargs="*", default=["Name three rivers."])
    args = parser.parse_args()
    alloy = build([m.strip() for m in args.models.split(",")], args.max_retries)
    answer(alloy, Context([ChatMessage.User(" ".join(args.prompt))]))


if __name__ == "__main__":
    main()
