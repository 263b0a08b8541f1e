"""LlamaCppProvider against a REAL llama.cpp server (the xllamacpp wheel) with a tiny model written at test time.

The model is a 0.5 MB random-weight llama GGUF made here with the ``gguf`` package (no
download): its text is noise, so the tests steer it with what llama.cpp itself offers
(a GBNF ``grammar``, ``tool_choice: required`` with an enum argument, ``logit_bias``)
and check the framing, usage, stop reasons, tool calls, reasoning and errors that the
real server produces. Skipped when ``xllamacpp`` or ``gguf`` is not installed.
"""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from llm_sync import (
    ChatMessage,
    Context,
    ContextOverflowError,
    LlmResponse,
    StopReason,
    ToolDefinition,
)
from llm_sync.providers.llamacpp import LlamaCppProvider
from tests.support.replay import kinds, only

N_CTX = 2048

# Gemma-style turns with Hermes tool calls written without newlines inside the tags:
# llama.cpp derives the tool-call grammar from how the template renders a call.
TOOLS_TEMPLATE = (
    "{%- if tools -%}<start_of_turn>system\nYou can call functions:\n"
    "{%- for tool in tools %}\n{{ tool | tojson }}{%- endfor %}\n"
    'Answer with <tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><end_of_turn>\n'
    "{% endif -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'assistant' -%}<start_of_turn>model\n"
    "{% if message.content %}{{ message.content }}{% endif -%}"
    "{%- if message.tool_calls -%}{%- for tc in message.tool_calls %}\n"
    '<tool_call>{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}</tool_call>'
    "{%- endfor -%}{%- endif -%}<end_of_turn>\n"
    "{% elif message.role == 'tool' -%}<start_of_turn>user\n<tool_response>\n{{ message.content }}\n</tool_response><end_of_turn>\n"
    "{% else -%}<start_of_turn>{{ message.role }}\n{{ message.content }}<end_of_turn>\n"
    "{% endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<start_of_turn>model\n{% endif -%}"
)
# The generation prompt opens "<think>": llama.cpp streams what comes before "</think>"
# as reasoning_content.
THINK_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message.role == 'assistant' -%}<start_of_turn>model\n"
    "{% if message.reasoning_content %}<think>\n{{ message.reasoning_content }}\n</think>\n{% endif %}"
    "{{ message.content or '' }}<end_of_turn>\n"
    "{% else -%}<start_of_turn>{{ message.role }}\n{{ message.content }}<end_of_turn>\n"
    "{% endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<start_of_turn>model\n<think>\n{% endif -%}"
)

SPECIALS = ["<unk>", "<s>", "</s>", "<start_of_turn>", "<end_of_turn>", "<tool_call>", "</tool_call>"]
WORDS = (
    ["\u2581"]
    + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + ["\u2581" + w for w in "the a is of to and in it hi hello weather city Paris Tokyo call get".split()]
    + list('{}":,_<>/\n')
    + ["tool", "_call", "name", "arguments", "get_weather"]
)


def vocabulary() -> List[str]:
    tokens = list(SPECIALS) + [f"<0x{i:02X}>" for i in range(256)]
    tokens += [w for w in WORDS if w not in tokens]
    return tokens


def write_tiny_gguf(path: Path, template: str) -> None:
    """A llama-architecture F32 model with random weights and an SPM byte-fallback vocabulary."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    n_embd, n_layer, n_head, n_ff = 64, 2, 4, 128
    tokens = vocabulary()
    T = gguf.TokenType
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL] + [T.USER_DEFINED] * 4 + [T.BYTE] * 256
    types += [T.NORMAL] * (len(tokens) - len(types))
    scores = [-i / 100 if types[i] == T.NORMAL else 0.0 for i in range(len(tokens))]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-random-llama")
    w.add_context_length(N_CTX)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(tokens.index("<end_of_turn>"))
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    # Without this the prefill "<start_of_turn>model\n" gains a leading "▁" that the
    # tool grammar rejects ("Failed to initialize samplers").
    w.add_add_space_prefix(False)
    w.add_chat_template(template)

    def tensor(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    tensor("token_embd.weight", len(tokens), n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    tensor("output.weight", len(tokens), n_embd)
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{n}.weight", n_embd, n_embd)
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def wait_healthy(url: str, deadline: float) -> None:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    while True:
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama.cpp at {url} never became healthy")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def llama_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, str]]:
    """Two real llama.cpp servers in this process (tool template, thinking template): name -> URL.

    Session-scoped and requested by the tests, so it starts before a test's leak check
    takes its "before" snapshot; the servers are stopped (their native threads joined)
    at the end of the session.
    """
    xlc = pytest.importorskip("xllamacpp", reason="xllamacpp (llama.cpp's server wheel) is not installed")
    pytest.importorskip("gguf", reason="the gguf package is not installed")
    folder = tmp_path_factory.mktemp("llamacpp")
    servers: List[Any] = []
    urls: Dict[str, str] = {}
    try:
        for name, template in (("tools", TOOLS_TEMPLATE), ("think", THINK_TEMPLATE)):
            path = folder / f"tiny-{name}.gguf"
            write_tiny_gguf(path, template)
            params = xlc.CommonParams()
            params.model.path = str(path)
            params.n_ctx = N_CTX
            params.n_parallel = 1
            params.port = 0
            params.hostnames = ["127.0.0.1"]
            params.verbosity = 0
            params.cpuparams.n_threads = 2
            params.cpuparams_batch.n_threads = 2
            server = xlc.Server(params)
            servers.append(server)
            urls[name] = str(server.listening_address)
            wait_healthy(urls[name], time.monotonic() + 60)
        yield urls
    finally:
        # Dropping the last reference runs the binding's destructor: it stops the
        # HTTP loop and joins the server's threads.
        while servers:
            servers.pop()


def provider(url: str, **kw: Any) -> LlamaCppProvider:
    kw.setdefault("max_retries", 0)
    return LlamaCppProvider(base_url=url, timeout=30, **kw)


def collect(p: LlamaCppProvider, context: Context) -> List[LlmResponse]:
    with p.stream_response(context) as stream:
        return list(stream)


def text_of(chunks: List[LlmResponse], cls: Any = LlmResponse.Text) -> str:
    return "".join(c.chunk for c in only(chunks, cls))  # type: ignore[attr-defined]


def test_text_stream_with_usage_and_stop(llama_servers: Dict[str, str]) -> None:
    # A grammar makes the random model say exactly this and then end its turn.
    p = provider(llama_servers["tools"], max_tokens=64, temperature=0, extra_body={"grammar": 'root ::= "Hello from llama.cpp"'})
    got = collect(p, Context([ChatMessage.System("Be brief."), ChatMessage.User("hello")]))
    assert kinds(got)[0] == "Start" and got[0].message_id.startswith("chatcmpl-")  # type: ignore[attr-defined]
    assert text_of(got) == "Hello from llama.cpp"
    usage = got[-2]
    assert isinstance(usage, LlmResponse.Usage)
    assert usage.input_tokens > 5 and usage.output_tokens >= 1
    assert usage.cached_input_tokens is not None and usage.cached_input_tokens <= usage.input_tokens
    assert got[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")


def test_text_stream_cut_by_max_tokens(llama_servers: Dict[str, str]) -> None:
    got = collect(provider(llama_servers["tools"], max_tokens=7, temperature=0), Context([ChatMessage.User("hi")]))
    usage = got[-2]
    assert isinstance(usage, LlmResponse.Usage) and usage.output_tokens == 7
    assert got[-1] == LlmResponse.Done(StopReason.LENGTH, "length")


def test_forced_tool_call_with_parsed_arguments(llama_servers: Dict[str, str]) -> None:
    vocab = vocabulary()
    bias: Dict[str, float] = {str(vocab.index("<tool_call>")): 30, str(vocab.index("<end_of_turn>")): 40}
    for ws in ("\u2581", "\n", "<0x09>", "<0x0A>", "<0x0D>", "<0x20>"):
        bias[str(vocab.index(ws))] = -100  # whitespace would let the random model wander
    tool = ToolDefinition(
        "get_weather",
        "Get weather",
        {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    )
    p = provider(
        llama_servers["tools"],
        max_tokens=60,
        temperature=0,
        extra_body={"tool_choice": "required", "parallel_tool_calls": False, "logit_bias": bias},
    )
    got = collect(p, Context([ChatMessage.User("weather in Paris?")], [tool]))
    completes = only(got, LlmResponse.ToolRequestComplete)
    assert len(completes) == 1
    call = completes[0].tool_call  # type: ignore[attr-defined]
    assert call.name == "get_weather" and call.parsed_arguments() == {"city": "Paris"}
    assert call.validate(tool) == {"city": "Paris"}
    starts = only(got, LlmResponse.ToolRequestStart)
    assert [(s.id, s.name) for s in starts] == [(call.id, "get_weather")]  # type: ignore[attr-defined]
    assert text_of(got, LlmResponse.ToolRequestArg) == call.arguments
    assert len(only(got, LlmResponse.ToolRequestArg)) > 1  # streamed, not whole
    assert isinstance(got[-2], LlmResponse.Usage)
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_calls")


def test_reasoning_stream(llama_servers: Dict[str, str]) -> None:
    grammar = 'root ::= "Two and two." "</think>" "Four"'
    p = provider(llama_servers["think"], max_tokens=60, temperature=0, extra_body={"grammar": grammar})
    got = collect(p, Context([ChatMessage.User("What is 2+2?")]))
    k = kinds(got)
    assert k[0] == "Start" and k[-2:] == ["Usage", "Done"]
    assert text_of(got, LlmResponse.Reasoning) == "Two and two."
    assert text_of(got) == "Four"
    assert max(i for i, x in enumerate(k) if x == "Reasoning") < k.index("Text")
    assert got[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")


def test_context_overflow_carries_the_servers_numbers(llama_servers: Dict[str, str]) -> None:
    p = provider(llama_servers["tools"], max_tokens=4, max_retries=2)
    with pytest.raises(ContextOverflowError) as info:
        collect(p, Context([ChatMessage.User("hello world " * 400)]))
    err = info.value
    assert err.status == 400 and err.provider == "llamacpp" and not err.retryable
    assert err.max_tokens == N_CTX
    assert err.requested_tokens is not None and err.requested_tokens > N_CTX
    body = err.body or ""
    assert f'"n_prompt_tokens":{err.requested_tokens}' in body and f'"n_ctx":{N_CTX}' in body


def test_stream_closed_half_way_leaves_no_reader_thread(llama_servers: Dict[str, str]) -> None:
    p = provider(llama_servers["tools"], max_tokens=1500, temperature=0)
    stream = p.stream_response(Context([ChatMessage.User("go on")]))
    first: List[LlmResponse] = []
    for c in stream:
        first.append(c)
        if len(first) == 4:
            break
    stream.close()
    assert kinds(first)[0] == "Start" and len(first) == 4
    deadline = time.monotonic() + 5
    while any(t.name.startswith("llm_sync-llamacpp") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the reader thread outlived close()"
        time.sleep(0.01)
    # The server noticed the client leaving and serves the next request at once.
    again = collect(provider(llama_servers["tools"], max_tokens=3), Context([ChatMessage.User("hi")]))
    assert again[-1] == LlmResponse.Done(StopReason.LENGTH, "length")


def test_model_name_is_ignored_by_a_one_model_server(llama_servers: Dict[str, str]) -> None:
    for model in ("", "anything-at-all"):
        got = collect(provider(llama_servers["tools"], model=model, max_tokens=2), Context([ChatMessage.User("hi")]))
        assert got[-1] == LlmResponse.Done(StopReason.LENGTH, "length")


def test_second_turn_with_reasoning_replayed(llama_servers: Dict[str, str]) -> None:
    # The thinking template renders reasoning_content back into the prompt: the
    # replayed turn must be accepted and counted as prompt tokens.
    from llm_sync import AssistantReasoning

    grammar = 'root ::= "Hm." "</think>" "Six"'
    p = provider(llama_servers["think"], max_tokens=30, temperature=0, extra_body={"grammar": grammar})
    short = Context([ChatMessage.User("3+3?")])
    replay = Context(
        [
            ChatMessage.User("2+2?"),
            ChatMessage.Assistant("Four", AssistantReasoning("Two and two make four, a long thought.")),
            ChatMessage.User("3+3?"),
        ]
    )
    a, b = collect(p, short), collect(p, replay)
    assert text_of(b) == "Six" and text_of(b, LlmResponse.Reasoning) == "Hm."
    ua, ub = a[-2], b[-2]
    assert isinstance(ua, LlmResponse.Usage) and isinstance(ub, LlmResponse.Usage)
    assert ub.input_tokens > ua.input_tokens + len("Two and two make four")  # byte-level vocabulary

