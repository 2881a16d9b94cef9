"""RetryConfig, CircuitBreaker and Resilience in isolation: what is retried, how long we wait,
and the breaker's closed / open / half-open states on an injected clock."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from graphflow.errors import GraphflowError
from graphflow.models.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    Resilience,
    RetryConfig,
    get_breaker,
    is_local_url,
    is_retryable,
    retry_after,
    split_params,
)


class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}


class HTTPError(Exception):
    """Shaped like the SDKs' APIStatusError: ``status_code`` and ``response.headers``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = _Response(status, headers)


class APIConnectionError(Exception):
    """Named like the SDKs' connection error (classification is by class name)."""


class APITimeoutError(APIConnectionError):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def flaky(*outcomes):
    """A function failing with / returning ``outcomes`` in order; ``.calls`` counts."""
    items = list(outcomes)

    def fn():
        fn.calls += 1
        item = items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    fn.calls = 0
    return fn


NO_WAIT = RetryConfig(max_attempts=4, initial=0.0, max_wait=1.0, jitter=False)


# -- classification ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_rate_limits_and_server_errors_are_retryable(status):
    assert is_retryable(HTTPError(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_other_client_errors_are_never_retryable(status):
    assert not is_retryable(HTTPError(status))


def test_timeouts_and_connection_errors_are_retryable_but_not_bugs_or_open_circuits():
    assert is_retryable(APIConnectionError()) and is_retryable(APITimeoutError())
    assert is_retryable(TimeoutError()) and is_retryable(ConnectionResetError())
    assert not is_retryable(ValueError("bug")) and not is_retryable(KeyError("x"))
    assert not is_retryable(CircuitOpenError("open"))
    assert issubclass(CircuitOpenError, GraphflowError)


def test_the_real_sdk_exceptions_are_classified():
    import httpx2
    import openai

    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")

    def status_error(cls, status):
        return cls("x", response=httpx2.Response(status, request=request), body=None)

    assert is_retryable(status_error(openai.RateLimitError, 429))
    assert is_retryable(status_error(openai.InternalServerError, 500))
    assert not is_retryable(status_error(openai.BadRequestError, 400))
    assert not is_retryable(status_error(openai.AuthenticationError, 401))
    assert is_retryable(openai.APITimeoutError(request=request))
    assert is_retryable(openai.APIConnectionError(request=request))


def test_retry_after_headers_ms_seconds_and_http_dates():
    assert retry_after(HTTPError(429, {"retry-after-ms": "250"})) == 0.25
    assert retry_after(HTTPError(429, {"retry-after": "1.5"})) == 1.5
    assert retry_after(HTTPError(429, {"retry-after-ms": "100", "retry-after": "9"})) == 0.1
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 < retry_after(HTTPError(429, {"retry-after": later})) <= 20
    assert retry_after(HTTPError(429, {"retry-after": "soon"})) is None
    assert retry_after(HTTPError(429)) is None and retry_after(ValueError()) is None


def test_backoff_grows_exponentially_is_capped_and_jittered():
    plain = RetryConfig(initial=0.5, max_wait=3.0, jitter=False)
    assert [plain.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryConfig(initial=0.5, max_wait=3.0, jitter=True)
    for n in (1, 2, 3, 6):
        for _ in range(20):
            assert plain.backoff(n) / 2 <= jittered.backoff(n) <= plain.backoff(n)
    with pytest.raises(ValueError):
        RetryConfig(max_attempts=0)


# -- retries -------------------------------------------------------------------------------------

def test_retries_transient_errors_until_success():
    fn = flaky(HTTPError(429), HTTPError(503), APITimeoutError(), "ok")
    assert Resilience(NO_WAIT, None).call(fn) == "ok" and fn.calls == 4


def test_never_retries_other_4xx_and_notes_why():
    fn = flaky(HTTPError(400), "unused")
    with pytest.raises(HTTPError) as info:
        Resilience(NO_WAIT, None, describe="test call").call(fn)
    assert fn.calls == 1
    assert "HTTP 400" in info.value.__notes__[0] and "not retried" in info.value.__notes__[0]


def test_gives_up_after_max_attempts_with_the_last_error():
    errors = [HTTPError(500), HTTPError(502), HTTPError(503)]
    fn = flaky(*errors, "unused")
    cfg = RetryConfig(max_attempts=3, initial=0.0, jitter=False)
    with pytest.raises(HTTPError) as info:
        Resilience(cfg, None).call(fn)
    assert info.value is errors[-1] and fn.calls == 3
    assert "after 3 attempt(s)" in info.value.__notes__[0]


def test_the_retry_after_delay_is_waited():
    fn = flaky(HTTPError(429, {"retry-after": "0.05"}), "ok")
    started = time.monotonic()
    assert Resilience(NO_WAIT, None).call(fn) == "ok"
    assert time.monotonic() - started >= 0.05


def test_a_retry_after_longer_than_max_wait_ends_the_retries():
    fn = flaky(HTTPError(429, {"retry-after": "120"}), "unused")
    with pytest.raises(HTTPError) as info:
        Resilience(RetryConfig(max_wait=30), None).call(fn)
    assert fn.calls == 1 and "asked to wait 120.0 s" in info.value.__notes__[0]


def test_async_retries_use_async_sleep():
    fn_calls = []

    async def fn():
        fn_calls.append(time.monotonic())
        if len(fn_calls) < 3:
            raise HTTPError(429, {"retry-after-ms": "30"})
        return "done"

    async def main():
        ticker = asyncio.create_task(asyncio.sleep(0.01))  # the loop keeps running meanwhile
        out = await Resilience(NO_WAIT, None).acall(fn)
        assert ticker.done()
        return out

    assert asyncio.run(main()) == "done"
    assert len(fn_calls) == 3 and fn_calls[2] - fn_calls[0] >= 0.06


# -- the circuit breaker -------------------------------------------------------------------------

def test_breaker_opens_after_threshold_consecutive_failures():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock, name="svc")
    for _ in range(2):
        b.before_call()
        b.record_failure()
    assert b.state == "closed"
    b.before_call()
    b.record_success()  # a success resets the count
    for _ in range(3):
        b.before_call()
        b.record_failure()
    assert b.state == "open"
    with pytest.raises(CircuitOpenError, match="svc is open after 3 consecutive") as info:
        b.before_call()
    assert info.value.retry_in == 30
    clock.now += 10
    with pytest.raises(CircuitOpenError) as info:
        b.before_call()
    assert info.value.retry_in == 20


def test_half_open_lets_exactly_one_trial_through():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    b.record_failure()
    assert b.state == "open"
    clock.now += 5
    assert b.state == "half_open"
    b.before_call()  # the trial
    with pytest.raises(CircuitOpenError, match="trial call is in flight"):
        b.before_call()
    b.record_success()
    assert b.state == "closed"
    b.before_call()


def test_a_failed_trial_reopens_with_a_fresh_timeout():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=clock)
    b.record_failure()
    b.record_failure()
    clock.now += 6
    b.before_call()
    b.record_failure()
    assert b.state == "open"
    clock.now += 4
    assert b.state == "open"
    clock.now += 1
    assert b.state == "half_open"


def test_client_errors_count_as_the_provider_being_up():
    b = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=Clock())
    b.record(HTTPError(500))
    b.record(HTTPError(400))  # the server answered: not a failure, resets the count
    b.record(HTTPError(500))
    assert b.state == "closed" and b.failures == 1
    b.record(ValueError("our bug"))  # says nothing about the provider
    assert b.failures == 1


def test_resilience_counts_each_attempt_and_fails_fast_when_open():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    r = Resilience(RetryConfig(max_attempts=5, initial=0.0, jitter=False), b)
    fn = flaky(*[HTTPError(503)] * 5)
    with pytest.raises(HTTPError):
        r.call(fn)
    assert fn.calls == 3 and b.state == "open"  # retries stop once the circuit opened
    fn2 = flaky("never called")
    with pytest.raises(CircuitOpenError):
        r.call(fn2)
    assert fn2.calls == 0
    clock.now += 30
    assert r.call(flaky("trial ok")) == "trial ok" and b.state == "closed"


def test_half_open_admits_one_of_many_concurrent_callers():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, reset_timeout=1, clock=clock)
    b.record_failure()
    clock.now += 1
    admitted, refused = [], []
    start = threading.Barrier(8)

    def caller():
        start.wait()
        try:
            b.before_call()
            admitted.append(1)
        except CircuitOpenError:
            refused.append(1)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 1 and len(refused) == 7


def test_shared_breakers_are_keyed_by_provider_and_base_url():
    a = get_breaker("openai-test", "http://127.0.0.1:1/v1")
    assert get_breaker("openai-test", "http://127.0.0.1:1/v1/") is a
    assert get_breaker("openai-test", "http://127.0.0.1:2/v1") is not a
    assert get_breaker("anthropic-test", "http://127.0.0.1:1/v1") is not a
    assert "openai-test http://127.0.0.1:1/v1" in a.name


# -- helpers -------------------------------------------------------------------------------------

def test_local_urls_and_param_splitting():
    assert is_local_url("http://127.0.0.1:8000/v1") and is_local_url("http://localhost")
    assert not is_local_url("https://api.openai.com/v1") and not is_local_url(None)

    def create(*, model, temperature=None, extra_body=None):
        pass

    direct, extra = split_params(create, {"temperature": 0, "top_k": 5,
                                          "extra_body": {"a": 1}})
    assert direct == {"temperature": 0} and extra == {"a": 1, "top_k": 5}
