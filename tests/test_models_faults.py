"""Provider failures the way they really arrive, on the real SDKs against the local wire-protocol
servers, for both providers: a stream that starts with HTTP 200 and then breaks with the
provider's own error event (Anthropic ``overloaded_error``, OpenAI ``server_error``), and the
``x-should-retry`` header. Both must reach the retries and the circuit breaker."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest
from support.chat_graph import one_node_graph

from graphflow.messages import merge_chunks
from graphflow.models import (
    AnthropicChat,
    CircuitBreaker,
    CircuitOpenError,
    OpenAIChat,
    RetryConfig,
)
from graphflow.models.resilience import error_type, is_retryable, is_transient
from graphflow.testing.llm_servers import AnthropicServer, Fault, OpenAIServer, Reply

FAST = RetryConfig(max_attempts=4, initial=0.001, max_wait=2.0, jitter=False)

PROVIDERS = {
    "anthropic": (AnthropicServer, AnthropicChat, "claude-haiku-4-5",
                  (anthropic.APIStatusError, anthropic.APIError)),
    "openai": (OpenAIServer, OpenAIChat, "gpt-4o-mini", (openai.APIError,)),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request):
    server_cls, model_cls, name, errors = PROVIDERS[request.param]
    with server_cls() as server:
        def make(**kw):
            kw.setdefault("retry", FAST)
            return model_cls(name, base_url=server.base_url, api_key="test-key", **kw)

        yield request.param, server, make, errors


# -- what the SDKs raise is classified by the error body's type ----------------------------------

def test_a_mid_stream_error_event_is_classified_as_transient_by_its_type(provider):
    kind, server, make, errors = provider
    server.push(Fault.stream_error(529 if kind == "anthropic" else 500, text="half an"))
    model = make(retry=RetryConfig(max_attempts=1), breaker=False)
    with pytest.raises(errors) as info:
        list(model.stream("hi"))
    exc = info.value
    # the SDKs raise these with HTTP status 200 (Anthropic) or none at all (OpenAI)
    assert getattr(exc, "status_code", 200) == 200
    assert error_type(exc) == ("overloaded_error" if kind == "anthropic" else "server_error")
    assert is_transient(exc) and is_retryable(exc)


# -- retries -------------------------------------------------------------------------------------

def test_an_error_event_before_any_content_is_retried(provider):
    _, server, make, _ = provider
    server.push(Fault.stream_error(529), Fault.stream_error(500), Reply("back on its feet"))
    chunks = list(make().stream("hi"))
    assert merge_chunks(chunks).content == "back on its feet"
    assert len(server.requests) == 3 and all(b["stream"] for b in server.bodies)


def test_an_error_event_before_content_is_retried_inside_a_graph_messages_stream(provider):
    _, server, make, _ = provider
    server.push(Fault.stream_error(529), Reply("streamed after a retry"))
    app = one_node_graph(make())
    events = list(app.stream({"messages": [("user", "hi")]}, mode="messages"))
    assert "".join(c.content for c, _ in events) == "streamed after a retry"
    assert len(server.requests) == 2


def test_astream_retries_an_error_event_before_content_too(provider):
    _, server, make, _ = provider
    server.push(Fault.stream_error(529), Reply("async and back"))
    model = make()

    async def main():
        try:
            return [c async for c in model.astream("hi")]
        finally:
            await model.aclose()

    assert merge_chunks(asyncio.run(main())).content == "async and back"
    assert len(server.requests) == 2


def test_an_error_event_after_content_is_raised_not_sent_again(provider):
    _, server, make, errors = provider
    server.push(Fault.stream_error(529, text="The answer is"), Reply("unused"))
    seen = []
    with pytest.raises(errors) as info:
        for chunk in make().stream("hi"):
            seen.append(chunk.content)
    assert "".join(seen) == "The answer is"  # what was delivered stays delivered, once
    assert len(server.requests) == 1
    assert any("not sent again" in note for note in info.value.__notes__)


# -- the circuit breaker -------------------------------------------------------------------------

def test_mid_stream_overloads_open_the_breaker(provider):
    _, server, make, errors = provider
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=60)
    model = make(retry=RetryConfig(max_attempts=1), breaker=breaker)
    server.push(Fault.stream_error(529, text="a"), Fault.stream_error(529),
                Fault.stream_error(529, text="b c"), Reply("unused"))
    for _ in range(3):
        with pytest.raises(errors):
            list(model.stream("hi"))
    assert breaker.state == "open" and breaker.failures == 3
    with pytest.raises(CircuitOpenError):
        list(model.stream("hi"))
    assert len(server.requests) == 3


def test_a_stream_that_opened_and_broke_counts_as_one_failure_not_a_success(provider):
    _, server, make, errors = provider
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout=60)
    model = make(retry=RetryConfig(max_attempts=1), breaker=breaker)
    server.push(Fault.stream_error(529, text="x y"), Fault.stream_error(529, text="x y"))
    for expected in (1, 2):
        with pytest.raises(errors):
            list(model.stream("hi"))
        assert breaker.failures == expected  # the HTTP 200 did not reset the count
    server.push(Reply("fine"))
    assert merge_chunks(model.stream("hi")).content == "fine"
    assert breaker.failures == 0 and breaker.state == "closed"


def test_a_half_open_trial_stream_decides_when_it_ends(provider):
    _, server, make, errors = provider
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=lambda: now[0])
    model = make(retry=RetryConfig(max_attempts=1), breaker=breaker)
    server.push(Fault.stream_error(529, text="x"), Reply("one two three"))
    with pytest.raises(errors):
        list(model.stream("hi"))
    now[0] = 10.0
    stream = model.stream("hi")
    first = next(c for c in stream if c.content)
    assert first.content and breaker.state == "half_open"
    with pytest.raises(CircuitOpenError, match="trial call is in flight"):
        list(model.stream("hi"))  # the trial is still streaming: nobody else gets through
    rest = list(stream)
    assert merge_chunks([first, *rest]).content == "one two three"
    assert breaker.state == "closed"


def test_a_stream_abandoned_half_way_frees_a_half_open_breaker(provider):
    _, server, make, errors = provider
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=lambda: now[0])
    model = make(retry=RetryConfig(max_attempts=1), breaker=breaker)
    server.push(Fault.stream_error(529), Reply("one two three"), Reply("again"))
    with pytest.raises(errors):
        list(model.stream("hi"))
    now[0] = 10.0
    stream = model.stream("hi")
    next(c for c in stream if c.content)
    stream.close()  # the caller stopped reading: says nothing about the provider
    assert breaker.state == "half_open"
    assert merge_chunks(model.stream("hi")).content == "again"
    assert breaker.state == "closed"


# -- x-should-retry --------------------------------------------------------------------------------

def test_x_should_retry_false_stops_the_retries_but_the_breaker_still_counts(provider):
    _, server, make, errors = provider
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout=60)
    server.push(Fault.server_error(503, should_retry=False), Reply("unused"))
    with pytest.raises(errors) as info:
        make(breaker=breaker).invoke("hi")
    assert len(server.requests) == 1
    assert any("x-should-retry: false" in note for note in info.value.__notes__)
    assert breaker.failures == 1


def test_x_should_retry_true_retries_what_would_not_be(provider):
    _, server, make, _ = provider
    server.push(Fault(409, "conflict (injected)", {"x-should-retry": "true"}), Reply("done"))
    assert make().invoke("hi").content == "done"
    assert len(server.requests) == 2


# -- the breaker is shared per provider and base URL, unless a model has its own -----------------

def test_models_share_a_breaker_unless_given_their_own(provider):
    _, server, make, errors = provider
    tripping, sibling = make(retry=RetryConfig(max_attempts=1)), make()
    own = make(breaker=CircuitBreaker(failure_threshold=5, reset_timeout=60))
    assert tripping.breaker is sibling.breaker and own.breaker is not tripping.breaker
    threshold = tripping.breaker.failure_threshold
    server.push(*[Fault.server_error(503)] * threshold)
    for _ in range(threshold):
        with pytest.raises(errors):
            tripping.invoke("hi")
    with pytest.raises(CircuitOpenError):
        sibling.invoke("hi")  # the same service: it fails fast too, nothing sent
    server.push(Reply("my own breaker is closed"))
    assert own.invoke("hi").content == "my own breaker is closed"
    assert len(server.requests) == threshold + 1
    assert make(breaker=False).breaker is None
