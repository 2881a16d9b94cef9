"""Local HTTP servers that speak the OpenAI and Anthropic wire protocols, for tests.

They let tests run the *real* ``openai`` / ``anthropic`` SDK code paths with no network: each
server listens on 127.0.0.1 (a free port), answers from a script, and records every request::

    from graphflow.testing.llm_servers import Fault, OpenAIServer, Reply

    with OpenAIServer([Fault.rate_limit(0.05), Reply("hello", usage=(12, 3))]) as server:
        model = OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key="test")
        assert model.invoke("hi").content == "hello"
        assert len(server.requests) == 2 and server.bodies[-1]["messages"][0]["content"] == "hi"

Script items, used one per request in order (``push`` adds more; ``default=`` answers once the
script is used up, else the server answers 400 "script exhausted"):

- :class:`Reply` (or a plain string): text, tool calls (several = parallel calls), structured
  ``data``, usage numbers. Streamed as server-sent events in the provider's exact event format
  when the request asks for ``stream``; ``gate=threading.Event()`` holds the stream after its
  first text piece until the event is set (to prove that chunks arrive incrementally).
- :class:`Fault`: an HTTP error in the provider's error format (429 with ``retry-after``, 500,
  529, a 400 validation error; ``x-should-retry`` headers), a dropped connection, or a stream
  that starts with HTTP 200 and then breaks with the provider's own error *event*
  (:meth:`Fault.stream_error`: Anthropic's ``event: error`` with ``overloaded_error``, OpenAI's
  ``data: {"error": {"type": "server_error"}}``), as the real APIs do under load.
- a function ``fn(body) -> item`` deciding from the request body.

With ``validate=True`` (the default) the servers reject, with a 400 in the provider's format,
what the real APIs reject and a client library could get wrong: tool results that answer no
call, calls left without results, non-alternating roles and system messages in Anthropic's
``messages``, a missing ``max_tokens``, a non-strict ``json_schema``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["AnthropicServer", "Fault", "OpenAIServer", "RecordedRequest", "Reply",
           "hashed_embedding"]


# -- the script ----------------------------------------------------------------------------------

@dataclass
class Reply:
    """A successful answer.

    Args:
        text: the answer's text.
        tool_calls: calls as ``ToolCall`` objects, ``(name, args)`` tuples or
            ``{"name", "args", "id"}`` dicts; several are parallel calls. ``args`` given as
            text is sent as it is, broken JSON included (a model cut off mid-call).
        usage: ``(input_tokens, output_tokens)``; default: estimated from the sizes.
        data: a structured answer (dict). OpenAI: sent as the JSON text. Anthropic: as the
            input of the tool the request forces with ``tool_choice``, else as JSON text.
        finish_reason: default: the provider's usual one for the content.
        gate: streaming only: after the first text piece, wait (up to 10 s) for this event.
        latency: seconds to wait before answering.
        chunk_delay: streaming only: seconds between events.
    """

    text: str = ""
    tool_calls: list[Any] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    data: Any = None
    finish_reason: str | None = None
    gate: threading.Event | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0


@dataclass
class Fault:
    """An error answer: ``status`` with a provider-format error body (status 0: the
    connection is dropped without an answer).

    ``mid_stream=True``: a streaming request gets HTTP 200, the first events of an answer (with
    ``text``, if any) and then the provider's error event carrying the body of ``status``
    (Anthropic: 529 -> ``overloaded_error``, 500 -> ``api_error``; OpenAI: ``server_error``); a
    request that does not stream gets the plain HTTP error.
    """

    status: int
    message: str = "injected fault"
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    mid_stream: bool = False
    text: str = ""

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0.05, *, ms: bool = False) -> Fault:
        """HTTP 429 with ``retry-after`` (seconds) or, ``ms=True``, ``retry-after-ms``."""
        headers = {}
        if retry_after is not None:
            headers = ({"retry-after-ms": str(int(retry_after * 1000))} if ms
                       else {"retry-after": str(retry_after)})
        return cls(429, "Rate limit reached (injected)", headers)

    @classmethod
    def server_error(cls, status: int = 500, *, should_retry: bool | None = None) -> Fault:
        """An HTTP 5xx; ``should_retry`` sends ``x-should-retry: true`` / ``false``."""
        headers = {} if should_retry is None else {
            "x-should-retry": "true" if should_retry else "false"}
        return cls(status, "The server had an error while processing your request (injected)",
                   headers)

    @classmethod
    def stream_error(cls, status: int = 529, *, text: str = "") -> Fault:
        """A stream that breaks after ``text`` with the provider's error event for ``status``
        (529: Anthropic's ``overloaded_error``)."""
        return cls(status, "Overloaded (injected)" if status == 529 else
                   "The server had an error while processing your request (injected)",
                   mid_stream=True, text=text)

    @classmethod
    def bad_request(cls, message: str = "Invalid request (injected)") -> Fault:
        return cls(400, message)

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without answering (the client sees a connection error)."""
        return cls(0, "connection dropped (injected)")


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any
    at: float  # time.monotonic() when it arrived
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    """Set once the answer has been written completely (or the connection dropped)."""


class _Stop(Exception):
    pass


def _call_parts(call: Any, make_id: Callable[[], str]) -> tuple[str, str, Any]:
    """(id, name, args) from a ToolCall, a (name, args) tuple or a dict."""
    if isinstance(call, tuple):
        name, args = call
        return make_id(), name, args
    if isinstance(call, dict):
        return call.get("id") or make_id(), call["name"], call.get("args", {})
    return getattr(call, "id", None) or make_id(), call.name, call.args


def _pieces(text: str) -> list[str]:
    """Split text into word pieces that add up to it: "a b" -> ["a", " b"]."""
    if not text:
        return []
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _thirds(text: str) -> list[str]:
    if len(text) < 3:
        return [text]
    a, b = len(text) // 3, 2 * len(text) // 3
    return [text[:a], text[a:b], text[b:]]


def _estimate(obj: Any) -> int:
    return max(1, len(json.dumps(obj, default=str)) // 4)


# -- the HTTP plumbing ---------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._send_json(404, {"error": {"message": f"no route GET {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = RecordedRequest("POST", path, headers, body, time.monotonic())
        owner._record(record)
        try:
            owner._respond(self, path, body)
        except (_Stop, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            record.done.set()

    # helpers used by the servers
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None
                   ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_sse(self, events: Iterable[bytes]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Stop


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: _ScriptedServer) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self._socks_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._socks_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._socks_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client went away (timeout, reset)
            return
        super().handle_error(request, client_address)

    def drop_all(self) -> None:
        with self._socks_lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _ScriptedServer:
    """Shared machinery: the script, the recording, the thread."""

    provider = "?"
    base_path = ""

    def __init__(self, script: Iterable[Any] = (), *, default: Any = None,
                 validate: bool = True) -> None:
        self._script: deque[Any] = deque(script)
        self.default = default
        self.validate = validate
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # the script
    def push(self, *items: Any) -> None:
        """Add answers to the end of the script."""
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        """Script items not used yet."""
        return len(self._script)

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of the requests received, in order."""
        return [r.body for r in self.requests]

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _next(self, body: Any) -> Any:
        with self._lock:
            item = self._script.popleft() if self._script else self.default
        if callable(item) and not isinstance(item, (Reply, Fault)):
            item = item(body)
        if isinstance(item, str):
            item = Reply(item)
        return item

    # lifecycle
    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError(f"{type(self).__name__} is not started: use it as a context "
                               f"manager or call start()")
        return self._http.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's (and the model's) ``base_url``."""
        return self.url + self.base_path

    def start(self) -> _ScriptedServer:
        if self._http is None:
            self._http = _HTTPServer(self)
            self._thread = threading.Thread(target=self._http.serve_forever, args=(0.02,),
                                            name=f"{type(self).__name__}:{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.drop_all()
            http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # answering
    def _respond(self, h: _Handler, path: str, body: Any) -> None:
        route = self._route(path)
        if route is None:
            h._send_json(404, self._error_body(404, f"no route POST {path}"))
            return
        if not isinstance(body, dict):
            h._send_json(400, self._error_body(400, "the request body is not a JSON object"))
            return
        if route == "embeddings":
            self._embeddings(h, body)  # type: ignore[attr-defined]
            return
        if self.validate:
            problem = self._check(body)
            if problem:
                h._send_json(400, self._error_body(400, problem))
                return
        item = self._next(body)
        if item is None:
            h._send_json(400, self._error_body(
                400, f"{type(self).__name__}: script exhausted at request #{len(self.requests)}"
                     f" (push more replies or set default=)"))
            return
        if item.latency:
            time.sleep(item.latency)
        if isinstance(item, Fault):
            if item.status == 0:
                h._drop()
            if item.mid_stream and body.get("stream"):
                head = itertools.islice(self._events(Reply(item.text), body),
                                        self._events_before_end(item.text))
                h._send_sse(itertools.chain(head, [self._error_event(item)]))
                return
            h._send_json(item.status, self._error_body(item.status, item.message),
                         item.headers)
            return
        if not isinstance(item, Reply):
            raise TypeError(f"unknown script item {item!r}")
        if body.get("stream"):
            h._send_sse(self._paced(item, self._events(item, body)))
        else:
            h._send_json(200, self._completion(item, body))

    @staticmethod
    def _paced(item: Reply, events: Iterator[bytes]) -> Iterator[bytes]:
        for i, event in enumerate(events):
            if i and item.chunk_delay:
                time.sleep(item.chunk_delay)
            yield event

    def _usage(self, item: Reply, body: dict[str, Any], out: Any) -> tuple[int, int]:
        if item.usage is not None:
            return item.usage
        return _estimate(body.get("messages")), _estimate(out)

    # per provider
    def _route(self, path: str) -> str | None:
        raise NotImplementedError

    def _check(self, body: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError

    def _completion(self, item: Reply, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _events(self, item: Reply, body: dict[str, Any]) -> Iterator[bytes]:
        raise NotImplementedError

    def _events_before_end(self, text: str) -> int:
        """How many of ``_events(Reply(text))`` come before the answer's end."""
        raise NotImplementedError

    def _error_event(self, fault: Fault) -> bytes:
        """The provider's mid-stream error event for ``fault``."""
        raise NotImplementedError


def _wait_gate(item: Reply) -> None:
    if item.gate is not None:
        item.gate.wait(10)


# -- OpenAI --------------------------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                       404: "invalid_request_error", 429: "requests"}


def hashed_embedding(text: str, dimension: int = 64) -> list[float]:
    """A deterministic stand-in embedding: words hashed into ``dimension`` buckets, normalized
    (texts sharing words are similar). What :class:`OpenAIServer` answers embeddings with."""
    import hashlib
    import math
    import re

    vec = [0.0] * dimension
    for word in re.findall(r"\w+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dimension] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [x / norm for x in vec]


class OpenAIServer(_ScriptedServer):
    """Speaks OpenAI's Chat Completions API (``POST /v1/chat/completions``), JSON and SSE, and
    its Embeddings API (``POST /v1/embeddings``).

    ``base_url`` ends in ``/v1``, as the ``openai`` SDK expects. Embeddings are computed by
    ``embed(texts, dimensions) -> vectors`` (default :func:`hashed_embedding`, 64 dimensions
    unless the request asks for ``dimensions``), as floats or base64 as the request's
    ``encoding_format`` says; a :class:`Fault` at the head of the script answers the next
    embeddings request instead (to test retries).
    """

    provider = "openai"
    base_path = "/v1"

    def __init__(self, script: Iterable[Any] = (), *, default: Any = None,
                 validate: bool = True,
                 embed: Callable[[list[str], int | None], list[list[float]]] | None = None,
                 ) -> None:
        super().__init__(script, default=default, validate=validate)
        self.embed = embed or (lambda texts, dims: [hashed_embedding(t, dims or 64)
                                                     for t in texts])

    def _route(self, path: str) -> str | None:
        path = path.rstrip("/")
        if path.endswith("/embeddings"):
            return "embeddings"
        return "chat" if path.endswith("/chat/completions") else None

    def _embeddings(self, h: _Handler, body: dict[str, Any]) -> None:
        with self._lock:
            fault = self._script.popleft() if self._script and isinstance(
                self._script[0], Fault) else None
        if fault is not None:
            if fault.status == 0:
                h._drop()
            h._send_json(fault.status, self._error_body(fault.status, fault.message),
                         fault.headers)
            return
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        dims = body.get("dimensions")
        problem = None
        if not body.get("model"):
            problem = "you must provide a model parameter"
        elif not isinstance(texts, list) or not texts or not all(
                isinstance(t, str) and t for t in texts):
            problem = "'$.input' is invalid: a non-empty string or array of non-empty strings"
        elif len(texts) > 2048:
            problem = f"'$.input' has {len(texts)} items; at most 2048 are allowed"
        elif dims is not None and (not isinstance(dims, int) or dims < 1):
            problem = f"'dimensions' must be a positive integer, got {dims!r}"
        if problem is not None and self.validate:
            h._send_json(400, self._error_body(400, problem))
            return
        vectors = self.embed(list(texts), dims)
        base64 = body.get("encoding_format") == "base64"
        data = []
        for i, vec in enumerate(vectors):
            value: Any = [float(x) for x in vec]
            if base64:
                import array
                import base64 as b64

                value = b64.b64encode(array.array("f", value).tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(max(1, len(t) // 4) for t in texts)
        h._send_json(200, {"object": "list", "data": data, "model": body["model"],
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _error_body(self, status: int, message: str) -> Any:
        kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
        code = "rate_limit_exceeded" if status == 429 else None
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _events_before_end(self, text: str) -> int:
        return 1 + len(_pieces(text))  # the role chunk, then the text pieces

    def _error_event(self, fault: Fault) -> bytes:
        return b"data: " + json.dumps(self._error_body(fault.status, fault.message)).encode() \
            + b"\n\n"

    def _check(self, body: dict[str, Any]) -> str | None:
        if not body.get("model"):
            return "you must provide a model parameter"
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return "'messages' must be a non-empty array"
        pending: set[str] = set()
        for i, m in enumerate(msgs):
            role = m.get("role")
            if role not in ("system", "developer", "user", "assistant", "tool"):
                return f"messages[{i}].role: invalid value {role!r}"
            if role == "tool":
                if m.get("tool_call_id") not in pending:
                    return (f"messages[{i}]: messages with role 'tool' must be a response to a "
                            f"preceding message with 'tool_calls' (tool_call_id "
                            f"{m.get('tool_call_id')!r} answers no pending call)")
                pending.discard(m["tool_call_id"])
                continue
            if pending:
                return ("an assistant message with 'tool_calls' must be followed by tool "
                        "messages responding to each 'tool_call_id'. The following "
                        f"tool_call_ids did not have response messages: {sorted(pending)}")
            if role == "assistant":
                for call in m.get("tool_calls") or []:
                    fn = call.get("function") or {}
                    if call.get("type") != "function" or not fn.get("name") or not isinstance(
                            fn.get("arguments"), str):
                        return f"messages[{i}].tool_calls: malformed call {call!r}"
                    pending.add(call.get("id"))
                if m.get("content") is None and not m.get("tool_calls"):
                    return f"messages[{i}]: an assistant message needs content or tool_calls"
            elif not isinstance(m.get("content"), (str, list)):
                return f"messages[{i}].content must be a string or an array"
        if pending:
            return ("an assistant message with 'tool_calls' must be followed by tool messages "
                    f"responding to each 'tool_call_id': {sorted(pending)} have none")
        for t in body.get("tools") or []:
            if t.get("type") != "function" or not (t.get("function") or {}).get("name"):
                return f"tools: malformed tool {t!r}"
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            if spec.get("strict"):
                problem = _strict_problem(spec.get("schema"), "schema")
                if problem:
                    return f"Invalid schema for response_format {spec.get('name')!r}: {problem}"
        if isinstance(fmt, dict) and fmt.get("type") == "json_object" and "json" not in (
                json.dumps(msgs).lower()):
            return "'messages' must contain the word 'json' to use response_format json_object"
        return None

    def _message(self, item: Reply) -> tuple[str | None, list[dict[str, Any]]]:
        text = item.text if item.data is None else json.dumps(item.data)
        calls = []
        for c in item.tool_calls:
            cid, name, args = _call_parts(c, lambda: "call_" + uuid.uuid4().hex[:24])
            calls.append({"id": cid, "type": "function", "function": {
                "name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}})
        return (text if text or not calls else None), calls

    def _finish(self, item: Reply, calls: list[Any]) -> str:
        return item.finish_reason or ("tool_calls" if calls else "stop")

    def _completion(self, item: Reply, body: dict[str, Any]) -> Any:
        text, calls = self._message(item)
        prompt, completion = self._usage(item, body, [text, calls])
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": self._finish(item, calls)}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
            "system_fingerprint": "fp_local",
        }

    def _events(self, item: Reply, body: dict[str, Any]) -> Iterator[bytes]:
        text, calls = self._message(item)
        prompt, completion = self._usage(item, body, [text, calls])
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model"),
                "system_fingerprint": "fp_local"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                            "finish_reason": finish}]}
            if include_usage:
                payload["usage"] = None
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for i, piece in enumerate(_pieces(text or "")):
            yield chunk({"content": piece})
            if i == 0:
                _wait_gate(item)
        for index, call in enumerate(calls):
            fn = call["function"]
            yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                         "function": {"name": fn["name"], "arguments": ""}}]})
            for part in _thirds(fn["arguments"]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
        yield chunk({}, self._finish(item, calls))
        if include_usage:
            payload = {**base, "choices": [], "usage": {
                "prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}}
            yield b"data: " + json.dumps(payload).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"


def _strict_problem(schema: Any, where: str) -> str | None:
    """What makes ``schema`` unfit for OpenAI's strict structured outputs (None: fine)."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema and len(schema) > 1:
        return f"In context={where}, $ref cannot have keywords {sorted(set(schema) - {'$ref'})}"
    if "oneOf" in schema:
        return f"In context={where}, 'oneOf' is not permitted"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (f"In context={where}, 'additionalProperties' is required to be supplied "
                    f"and to be false")
        props = schema.get("properties") or {}
        missing = sorted(set(props) - set(schema.get("required") or []))
        if missing:
            return (f"In context={where}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing {missing}")
    subs: list[tuple[Any, str]] = []
    for name, sub in (schema.get("properties") or {}).items():
        subs.append((sub, f"{where}.properties.{name}"))
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            subs.append((sub, f"{where}.{key}.{name}"))
    if isinstance(schema.get("items"), dict):
        subs.append((schema["items"], f"{where}.items"))
    for key in ("anyOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            subs.append((sub, f"{where}.{key}[{i}]"))
    for sub, at in subs:
        problem = _strict_problem(sub, at)
        if problem:
            return problem
    return None


# -- Anthropic -----------------------------------------------------------------------------------

_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                          403: "permission_error", 404: "not_found_error",
                          413: "request_too_large", 429: "rate_limit_error",
                          529: "overloaded_error"}


class AnthropicServer(_ScriptedServer):
    """Speaks Anthropic's Messages API (``POST /v1/messages``), JSON and SSE.

    ``base_url`` has no ``/v1``: the ``anthropic`` SDK adds it.
    """

    provider = "anthropic"
    base_path = ""

    def _route(self, path: str) -> str | None:
        return "messages" if path.rstrip("/").endswith("/v1/messages") else None

    def _error_body(self, status: int, message: str) -> Any:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def _events_before_end(self, text: str) -> int:
        # message_start, ping, then (with text) its content_block_start and text deltas
        return 2 + (1 + len(_pieces(text)) if text else 0)

    def _error_event(self, fault: Fault) -> bytes:
        return b"event: error\ndata: " + json.dumps(
            self._error_body(fault.status, fault.message)).encode() + b"\n\n"

    def _check(self, body: dict[str, Any]) -> str | None:
        if not body.get("model"):
            return "model: Field required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return "messages: at least one message is required"
        prev_role = None
        pending: set[str] = set()
        for i, m in enumerate(msgs):
            role = m.get("role")
            if role not in ("user", "assistant"):
                return (f"messages.{i}.role: Input should be 'user' or 'assistant' (got "
                        f"{role!r}; system prompts go in the top-level 'system' parameter)")
            if role == prev_role:
                return (f"messages: roles must alternate between 'user' and 'assistant', but "
                        f"found multiple '{role}' roles in a row (messages.{i})")
            prev_role = role
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list) or not blocks:
                return f"messages.{i}.content: must be a non-empty string or list of blocks"
            results = set()
            seen_other = False
            for j, b in enumerate(blocks):
                kind = b.get("type")
                if kind == "text" and not b.get("text"):
                    return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
                if kind == "tool_result":
                    if role != "user":
                        return f"messages.{i}.content.{j}: tool_result blocks belong to 'user'"
                    if seen_other:
                        return (f"messages.{i}: tool_result blocks must come before any other "
                                f"content in a user message")
                    if b.get("tool_use_id") not in pending:
                        return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                                f"`tool_result` blocks: {b.get('tool_use_id')}. Each "
                                f"`tool_result` block must have a corresponding `tool_use` "
                                f"block in the previous message.")
                    results.add(b["tool_use_id"])
                else:
                    seen_other = True
                if kind == "tool_use" and role != "assistant":
                    return f"messages.{i}.content.{j}: tool_use blocks belong to 'assistant'"
                if kind == "tool_use" and not isinstance(b.get("input"), dict):
                    return f"messages.{i}.content.{j}.input: Input should be a valid dictionary"
            if role == "user":
                if pending - results:
                    return (f"messages.{i}: `tool_use` ids were found without `tool_result` "
                            f"blocks immediately after: {sorted(pending - results)}")
                pending = set()
            else:
                if pending:
                    return f"messages.{i}: tool_use ids {sorted(pending)} have no tool_result"
                pending = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
        for t in body.get("tools") or []:
            if "type" not in t and (not t.get("name") or "input_schema" not in t):
                return f"tools: malformed tool {t!r} (needs name and input_schema)"
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "tool":
            names = {t.get("name") for t in body.get("tools") or []}
            if choice.get("name") not in names:
                return f"tool_choice: tool {choice.get('name')!r} not found in 'tools'"
        return None

    def _content(self, item: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        forced = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        text = item.text
        calls = list(item.tool_calls)
        if item.data is not None:
            if forced.get("type") == "tool":
                calls.append({"name": forced["name"], "args": item.data})
            else:
                text = json.dumps(item.data)
        if text:
            blocks.append({"type": "text", "text": text})
        for c in calls:
            cid, name, args = _call_parts(c, lambda: "toolu_" + uuid.uuid4().hex[:24])
            if isinstance(args, str):  # JSON text; broken JSON (a model cut off) stays text
                with contextlib.suppress(json.JSONDecodeError):
                    args = json.loads(args)
            blocks.append({"type": "tool_use", "id": cid, "name": name, "input": args})
        return blocks

    def _stop_reason(self, item: Reply, blocks: list[dict[str, Any]]) -> str:
        if item.finish_reason:
            return item.finish_reason
        return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"

    def _completion(self, item: Reply, body: dict[str, Any]) -> Any:
        blocks = self._content(item, body)
        prompt, completion = self._usage(item, body, blocks)
        return {
            "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": body.get("model"), "content": blocks,
            "stop_reason": self._stop_reason(item, blocks), "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }

    def _events(self, item: Reply, body: dict[str, Any]) -> Iterator[bytes]:
        blocks = self._content(item, body)
        prompt, completion = self._usage(item, body, blocks)

        def event(kind: str, payload: dict[str, Any]) -> bytes:
            return (f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **payload})
                    .encode() + b"\n\n")

        yield event("message_start", {"message": {
            "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": body.get("model"), "content": [], "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
        yield event("ping", {})
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                yield event("content_block_start", {"index": index, "content_block": {
                    "type": "text", "text": ""}})
                for i, piece in enumerate(_pieces(block["text"])):
                    yield event("content_block_delta", {"index": index, "delta": {
                        "type": "text_delta", "text": piece}})
                    if i == 0:
                        _wait_gate(item)
            else:
                yield event("content_block_start", {"index": index, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"],
                    "input": {}}})
                given = block["input"]
                for part in _thirds(given if isinstance(given, str) else json.dumps(given)):
                    yield event("content_block_delta", {"index": index, "delta": {
                        "type": "input_json_delta", "partial_json": part}})
            yield event("content_block_stop", {"index": index})
        yield event("message_delta", {
            "delta": {"stop_reason": self._stop_reason(item, blocks), "stop_sequence": None},
            "usage": {"output_tokens": completion}})
        yield event("message_stop", {})
