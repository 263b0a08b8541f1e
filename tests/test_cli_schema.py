"""``llm-sync chat --schema FILE_OR_JSON``: the schema goes out natively, the validated JSON comes back on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Sequence

from tests.support.server import LoopbackServer, Reply

REPO = Path(__file__).resolve().parents[1]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


def run(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m llm_sync ARGS`` with no provider settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "_HOST")) and k != "LLM_SYNC_MODEL"}
    env.update(PYTHONPATH=str(REPO), HOME=str(cwd), PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "llm_sync", *args],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def chat_stream(*pieces: str) -> List[Any]:
    head = {"id": "c1", "object": "chat.completion.chunk", "model": "m1"}
    events: List[Any] = [{**head, "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append("[DONE]")
    return events


def test_the_schema_inline_or_in_a_file_prints_the_validated_json(server: LoopbackServer, tmp_path: Path) -> None:
    model = f"openai-compatible:m1@{server.url}/v1"
    server.reply(
        Reply.event_stream(*chat_stream('{"city": "Pa', 'ris", "country": "Fr', 'ance"}')),
        Reply.event_stream(*chat_stream('{"city": "Lima"}')),
    )
    done = run(["chat", "-m", model, "--schema", json.dumps(SCHEMA), "Paris is in France."], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"city": "Paris", "country": "France"}\n'
    sent = server.requests[0].json()["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA, "strict": True}}
    # From a file; a reply missing a field is the typed error, exit 1, nothing on stdout.
    path = tmp_path / "place.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    done = run(["chat", "-m", model, "--schema", str(path), "Lima is in Peru."], tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert "StructuredOutputError" in done.stderr and "'country' is a required property" in done.stderr
    assert server.requests[1].json()["response_format"]["json_schema"]["schema"] == SCHEMA


def test_bad_schemas_fail_before_any_request(server: LoopbackServer, tmp_path: Path) -> None:
    model = f"openai-compatible:m1@{server.url}/v1"
    done = run(["chat", "-m", model, "--schema", '{"type": "objekt"}', "hi"], tmp_path)
    assert done.returncode == 1 and "OutputSchemaError" in done.stderr and "at /type" in done.stderr
    done = run(["chat", "-m", model, "--schema", "no-such-file.json", "hi"], tmp_path)
    assert done.returncode == 1 and "neither a JSON object nor a file" in done.stderr
    done = run(["chat", "-m", model, "--schema", json.dumps(SCHEMA)], tmp_path)  # no prompt: a usage error
    assert done.returncode == 2 and "prompt" in done.stderr
    assert server.requests == []
