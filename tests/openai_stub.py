"""A tiny OpenAI-compatible chat server on 127.0.0.1 for tests: answers with a router
function, and can be told to fail the first calls with given HTTP statuses (and bodies)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A router answers with the text, or with a whole message (``content``, ``tool_calls``,
#: and a ``finish_reason`` that is taken out of it).
Router = Callable[[Sequence[dict[str, Any]]], str | dict[str, Any]]
#: A fault: an HTTP status (with a generic error body), or a status and its JSON body.
Fault = int | tuple[int, Mapping[str, Any]]


class StubState:
    def __init__(
        self, router: Router, faults: Sequence[Fault] = (), retry_after: str = "0"
    ) -> None:
        self.router = router
        self.faults = list(faults)
        self.retry_after = retry_after
        self.requests: list[dict[str, Any]] = []
        self.peers: list[tuple[str, int]] = []  # client address of each POST
        self.headers: list[dict[str, str]] = []  # request headers of each POST
        self.lock = threading.Lock()


def completion_body(
    body: Mapping[str, Any],
    content: str | None,
    name: str,
    *,
    finish_reason: str = "stop",
    tool_calls: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A chat.completion answer to request ``body`` (usage counted in words), with ``n``
    identical choices when the request asks for several."""
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion = len((content or "").split())
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    n = int(body.get("n") or 1)
    return {
        "id": f"chatcmpl-{name}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", f"{name}-model"),
        "choices": [
            {"index": i, "finish_reason": finish_reason, "message": message} for i in range(n)
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion * n,
            "total_tokens": prompt + completion * n,
        },
    }


def _handler(state: StubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(
            self, status: int, body: Mapping[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append(body)
                state.peers.append(self.client_address[:2])
                state.headers.append(dict(self.headers.items()))
                fault = state.faults.pop(0) if state.faults else None
            if fault is not None:
                status, error = (
                    fault
                    if isinstance(fault, tuple)
                    else (fault, {"error": {"message": f"injected {fault}", "type": "stub"}})
                )
                headers = {"Retry-After": state.retry_after} if status == 429 else {}
                self._send(status, error, headers)
                return
            try:
                answer = state.router(body["messages"])
            except Exception as exc:  # the router's own failure is a 500
                self._send(500, {"error": {"message": repr(exc)}})
                return
            if isinstance(answer, str):
                self._send(200, completion_body(body, answer, "stub"))
                return
            message = dict(answer)
            finish = str(message.pop("finish_reason", "stop"))
            self._send(
                200,
                completion_body(
                    body,
                    message.get("content"),
                    "stub",
                    finish_reason=finish,
                    tool_calls=message.get("tool_calls", ()),
                ),
            )

    return Handler


@contextmanager
def openai_stub(
    router: Router, faults: Sequence[Fault] = (), retry_after: str = "0"
) -> Iterator[tuple[str, StubState]]:
    """Serve on a free loopback port; yields (base_url, state)."""
    state = StubState(router, faults, retry_after)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
