"""A real OpenAI-compatible chat-completions server on 127.0.0.1 that misbehaves on a schedule.

Tests start it in a thread (`with FaultyServer(respond, faults={2: "500", ...}) as server:`), point a
client at `server.base_url` and read `server.requests` afterwards. It speaks the protocol for real
(HTTP, JSON bodies, bearer auth, `usage` counts); `respond(user_message) -> text` decides what the
"model" says, so tests stay fast and deterministic. Faults by request number (1-based, counted in
arrival order):

  "500"        HTTP 500 with an error body
  "429"        HTTP 429 with Retry-After: 0
  "slow"       answers only after `slow_s` seconds (longer than the client's timeout)
  "malformed"  HTTP 200 with a truncated JSON body
  "drop"       closes the connection without replying
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("500", "429", "slow", "malformed", "drop")


class FaultyServer:
    def __init__(
        self,
        respond: Callable[[str], str],
        faults: dict[int, str] | None = None,
        api_key: str | None = None,
        served_model: str = "test-model",
        slow_s: float = 1.0,
    ):
        unknown = set((faults or {}).values()) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {FAULTS}")
        self.respond = respond
        self.faults = dict(faults or {})
        self.api_key = api_key
        self.served_model = served_model
        self.slow_s = slow_s
        self.requests: list[dict] = []  # every request body, in arrival order
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FaultyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _arrive(self, body: dict) -> str | None:
        with self._lock:
            self.requests.append(body)
            return self.faults.get(len(self.requests))

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: tests read server.requests instead
                pass

            def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, message: str, headers: dict | None = None) -> None:
                body = {"error": {"message": message, "type": "test_server", "code": status}}
                self._send(status, json.dumps(body).encode(), headers)

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._error(404, f"no route {self.path}")
                if (
                    server.api_key
                    and self.headers.get("Authorization") != f"Bearer {server.api_key}"
                ):
                    return self._error(401, "invalid API key")
                try:
                    body = json.loads(raw)
                    messages = body["messages"]
                    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
                except (ValueError, KeyError, StopIteration, TypeError):
                    return self._error(400, "body must be JSON with a user message")
                if body.get("model") != server.served_model:
                    return self._error(404, f"model {body.get('model')!r} does not exist")
                fault = server._arrive(body)
                if fault == "500":
                    return self._error(500, "internal error (scheduled)")
                if fault == "429":
                    return self._error(429, "rate limited (scheduled)", {"Retry-After": "0"})
                if fault == "drop":
                    self.close_connection = True
                    return None
                if fault == "slow":
                    time.sleep(server.slow_s)
                text = server.respond(user)
                reply = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": server.served_model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": len(user.split()),
                        "completion_tokens": len(text.split()),
                        "total_tokens": len(user.split()) + len(text.split()),
                    },
                }
                payload = json.dumps(reply).encode()
                if fault == "malformed":
                    payload = payload[: len(payload) // 2]
                try:
                    self._send(200, payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a "slow" fault): nothing to do
                return None

        return Handler
