"""What the chat models on official provider SDKs share: their clients and how calls go out.

:class:`SDKChatModel` holds one sync client (the SDK's own retries off: graphflow's
:class:`~graphflow.models.resilience.Resilience` retries and trips the circuit breaker), makes
an async client per event loop on first use (an httpx pool belongs to one loop), closes them,
and routes every request through the retry policy and breaker. A provider says which SDK
classes it uses, which environment variable holds its key, and where ``create`` lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar, Literal, Protocol, Self

from ..messages import AIMessageChunk
from .base import ChatModel
from .resilience import (
    CircuitBreaker,
    Resilience,
    RetryConfig,
    get_breaker,
    is_transient,
    resolve_api_key,
    split_params,
)

__all__ = ["SDKChatModel"]


def _head(state: StreamState, events: Iterator[Any]) -> list[AIMessageChunk]:
    """Read ``events`` up to the first chunk they make (the stream's part that is retried)."""
    for event in events:
        chunks = list(state.feed(event))
        if chunks:
            return chunks
    return []


async def _ahead(state: StreamState, events: AsyncIterator[Any]) -> list[AIMessageChunk]:
    """Async :func:`_head`."""
    async for event in events:
        chunks = list(state.feed(event))
        if chunks:
            return chunks
    return []


class StreamState(Protocol):
    """Turns one provider's stream events into chunks (one per streamed request)."""

    def feed(self, event: Any) -> Iterator[AIMessageChunk]: ...

    def end(self) -> Iterator[AIMessageChunk]: ...


class SDKChatModel(ChatModel):
    """Base of :class:`OpenAIChat` and :class:`AnthropicChat`: client lifecycle and calls."""

    env_key: ClassVar[str] = ""  # the environment variable that holds the API key

    # -- what a provider says ---------------------------------------------------------------------

    def _sdk(self) -> tuple[type, type]:
        """The SDK's sync and async client classes."""
        raise NotImplementedError

    def _create(self, client: Any) -> Callable[..., Any]:
        """The SDK method that sends one request, on ``client``."""
        raise NotImplementedError

    def _settings_of(self, client: Any) -> dict[str, Any]:
        """The constructor arguments that rebuild ``client`` (for its async twin)."""
        return {"api_key": client.api_key, "base_url": str(client.base_url),
                "timeout": client.timeout, "max_retries": 0}

    # -- set-up -------------------------------------------------------------------------------

    def _connect(self, *, api_key: str | None, base_url: str | None, timeout: float,
                 retry: RetryConfig | None, breaker: CircuitBreaker | Literal[False] | None,
                 client: Any, async_client: Any, params: dict[str, Any]) -> None:
        """Make (or adopt) the clients, and the retry policy and breaker calls go through."""
        sync_cls, self._async_cls = self._sdk()
        self.retry = retry or RetryConfig()
        self.params = params
        owner = f"{type(self).__name__}({self.model!r})"
        if client is not None:
            self._client = client.with_options(max_retries=0)
            self._client_kwargs = self._settings_of(client)
        else:
            key = resolve_api_key(api_key, self.env_key, owner, base_url)
            self._client_kwargs = {"api_key": key, "base_url": base_url, "timeout": timeout,
                                   "max_retries": 0}
            self._client = sync_cls(**self._client_kwargs)
        self._async_given = (async_client.with_options(max_retries=0)
                             if async_client is not None else None)
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self.base_url = str(self._client.base_url).rstrip("/")
        self._params, extra = split_params(self._create(self._client), params)
        if extra:
            self._params["extra_body"] = extra
        if breaker is None:
            breaker = get_breaker(self.provider, self.base_url)
        self.breaker = breaker or None
        self._resilience = Resilience(self.retry, self.breaker,
                                      describe=f"{owner} at {self.base_url}")

    # -- clients ---------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The sync SDK client (its own retries off)."""
        return self._client

    def _aclient(self) -> Any:
        if self._async_given is not None:
            return self._async_given
        loop = asyncio.get_running_loop()  # an httpx async pool belongs to one event loop
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = self._async_cls(**self._client_kwargs)
        return client

    def close(self) -> None:
        """Close the sync client's connections."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the async client of the running event loop (and the given one)."""
        if self._async_given is not None:
            await self._async_given.close()
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- calls -----------------------------------------------------------------------------------

    def _call(self, kw: dict[str, Any]) -> Any:
        create = self._create(self._client)
        return self._resilience.call(lambda: create(**kw))

    async def _acall(self, kw: dict[str, Any]) -> Any:
        create = self._create(self._aclient())
        return await self._resilience.acall(lambda: create(**kw))

    # A stream is one call for the retries and the breaker until its first chunk: opening it
    # and reading up to the first chunk is retried as a unit (a provider's error event before
    # any content, e.g. Anthropic's overloaded_error, is retried like an HTTP 529). Once a chunk
    # went out the stream is not sent again (the caller would see it twice). The breaker hears
    # of the stream when it ends: complete, or broken.

    def _sdk_stream(self, kw: dict[str, Any], new_state: Callable[[], StreamState]
                    ) -> Iterator[AIMessageChunk]:
        """Send the streaming request ``kw``; yield its chunks (see above)."""
        create = self._create(self._client)

        def start() -> tuple[Any, Iterator[Any], StreamState, list[AIMessageChunk]]:
            state, stream = new_state(), create(**kw)
            try:
                events = iter(stream)
                return stream, events, state, _head(state, events)
            except BaseException:
                stream.close()
                raise

        stream, events, state, head = self._resilience.call(start, deferred=True)
        with self._settled(), stream:
            yield from head
            for event in events:
                yield from state.feed(event)
            yield from state.end()

    async def _sdk_astream(self, kw: dict[str, Any], new_state: Callable[[], StreamState]
                           ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`_sdk_stream`."""
        create = self._create(self._aclient())

        async def start() -> tuple[Any, AsyncIterator[Any], StreamState, list[AIMessageChunk]]:
            state, stream = new_state(), await create(**kw)
            try:
                events = stream.__aiter__()
                return stream, events, state, await _ahead(state, events)
            except BaseException:
                await stream.close()
                raise

        stream, events, state, head = await self._resilience.acall(start, deferred=True)
        with self._settled():
            async with stream:
                for chunk in head:
                    yield chunk
                async for event in events:
                    for chunk in state.feed(event):
                        yield chunk
                for chunk in state.end():
                    yield chunk

    @contextlib.contextmanager
    def _settled(self) -> Iterator[None]:
        """Tell the breaker how the stream ended (complete, broken, or dropped by its reader)."""
        outcome: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            outcome = exc
            self._broke(exc)
            raise
        finally:
            self._resilience.settle(outcome)

    def _broke(self, exc: BaseException) -> None:
        if isinstance(exc, Exception) and is_transient(exc):
            exc.add_note(f"graphflow: the stream from {self.name} at {self.base_url} broke after "
                         f"part of the answer had been delivered: not sent again (that would "
                         f"repeat it); counted by the circuit breaker")
