"""Fall back to the next model when one fails before answering.

``python examples/fallback.py -m anthropic:claude-sonnet-4-5,openai:gpt-4.1,local "Hello"``

The models are tried in order. One that cannot even be set up (no key for it, its extra not
installed) is skipped; one that fails *before* any content is left for the next. Once text
reached the user, starting over elsewhere would repeat it, so that error is raised. Each model
is set up only when its turn comes: the embedded ``local`` model at the end of the default list
loads only if the others cannot answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from llm_sync import ChatMessage, Context, LlmError, LlmResponse, MissingApiKeyError, parse_model

DEFAULT_MODELS = "anthropic:claude-sonnet-4-5,openai:gpt-4.1,local"


def answer(models: List[str], ctx: Context, max_retries: int) -> str:
    failures = []
    for spec in models:
        try:
            provider, _ = parse_model(spec)
        except (MissingApiKeyError, ImportError) as err:
            print(f"[{spec} skipped: {err}]", file=sys.stderr)
            failures.append(err)
            continue
        with_retries = getattr(provider, "with_max_retries", None)
        if with_retries is not None:
            provider = with_retries(max_retries)
        name = provider.display_name()
        started = False
        try:
            with provider.stream_response(ctx) as stream:
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
    raise RuntimeError(f"every model failed: {'; '.join(str(f) for f in failures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "-m", "--models", default=os.environ.get("LLM_SYNC_MODEL", DEFAULT_MODELS),
        help="model strings separated by commas, tried in order",
    )
    parser.add_argument("--max-retries", type=int, default=1, help="retries within one provider")
    parser.add_argument("prompt", nargs="*", default=["Name three rivers."])
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    answer(models, Context([ChatMessage.User(" ".join(args.prompt))]), args.max_retries)


if __name__ == "__main__":
    try:
        main()
    except (LlmError, ImportError, ValueError, RuntimeError) as err:  # a bad model string, or every model failed
        sys.exit(f"fallback.py: {err}")
    except KeyboardInterrupt:
        sys.exit(130)
