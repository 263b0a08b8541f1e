"""Stream a chat answer with no key and no network: a stand-in Anthropic server on 127.0.0.1.

The server below speaks the Anthropic Messages streaming wire format (the same
events the real API sends); the client side is the real ``AnthropicProvider``
over real HTTP, so everything from the socket up runs as it would against
api.anthropic.com. Point ``base_url`` elsewhere and pass a key to use the real thing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from llm_sync import AnthropicProvider, ChatMessage, Context, LlmResponse

ANSWER = (
    "Rivers carve their valleys slowly: the Nile runs north through the desert, the Amazon "
    "carries a fifth of the world's river water, and the Danube crosses ten countries."
)


def events(question: str) -> list:
    words = ANSWER.split(" ")
    out = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_demo", "type": "message", "role": "assistant",
         "model": "demo", "content": [], "stop_reason": None, "usage": {"input_tokens": len(question) // 4, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        out.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
    out += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": len(words)}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        question = body["messages"][-1]["content"][0]["text"]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for name, data in events(question):
            payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()
            time.sleep(0.02)  # a real model takes its time too
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        provider = AnthropicProvider(api_key="demo-key", base_url=f"http://127.0.0.1:{server.server_port}", model="demo")
        ctx = Context([ChatMessage.User("Tell me about three rivers.")])
        print(f"{provider.display_name()} says: ", end="", flush=True)
        with provider.stream_response(ctx) as stream:
            for chunk in stream:
                if isinstance(chunk, LlmResponse.Text):
                    print(chunk.chunk, end="", flush=True)
                elif isinstance(chunk, LlmResponse.Usage):
                    usage = chunk
                elif isinstance(chunk, LlmResponse.Done):
                    print(f"\n[stop: {chunk.stop_reason}, tokens in/out: {usage.input_tokens}/{usage.output_tokens}]")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
