"""Retries and circuit breakers for the provider chat models.

Import them from :mod:`graphflow.models` (``from graphflow.models import RetryConfig,
CircuitBreaker, CircuitOpenError, MissingAPIKeyError``).

:class:`RetryConfig` says how often and how long to retry a provider call. A call is retried
(with tenacity) only when trying again can help: a rate limit (HTTP 429), a server error (5xx,
including Anthropic's 529 "overloaded"), a timeout or a connection error — or an error whose body
says so whatever the HTTP status: a stream that started with HTTP 200 and then broke with the
provider's own error event (Anthropic ``overloaded_error`` / ``api_error``, OpenAI
``server_error``; see :func:`is_transient`). Any other 4xx (a bad request, a bad key, an unknown
model) is raised at once: retrying would send the same mistake again. The provider's
``x-should-retry: false`` (or ``true``) header overrides that, as it does for the SDKs' own
retries. A ``retry-after-ms`` / ``retry-after`` header (seconds or an HTTP date) is honoured:
the next attempt waits at least that long; a server asking for more than ``max_wait`` ends the
retries at once rather than blocking the caller for minutes. Otherwise the wait grows
exponentially from ``initial`` up to ``max_wait``, with jitter. The SDKs' own retries are turned
off (``max_retries=0``) by the models, so these are the only ones. A stream is retried only
while nothing of it has reached the caller yet: once chunks went out, sending the request again
would repeat them, so the error is raised (a node's ``RetryPolicy(retry_on=is_retryable)`` can
re-run the node).

:class:`CircuitBreaker` stops calling a provider that keeps failing: after ``failure_threshold``
consecutive transient failures (:func:`is_transient`) it *opens* and every call fails fast
with :class:`CircuitOpenError`, without touching the network; after ``reset_timeout`` seconds it
is *half-open* and lets one trial call through: a success closes it, a failure opens it again.
Each attempt (not each retried call) counts; a stream counts when it ends (complete, or broken
mid-way). An answer that is a client error (a 400) proves the provider is up, so it counts as a
success.

**One breaker per provider and base URL, shared process-wide.** Every model built without
``breaker=`` uses ``get_breaker(provider, base_url)``: when one model trips it, every
other model of that provider on that base URL fails fast too (they call the same service), and
the thresholds are those of the first model that asked. To opt out, give a model its own
``breaker=CircuitBreaker(failure_threshold=..., reset_timeout=...)``, or ``breaker=False`` for
none.

:class:`Resilience` runs a call (sync or async) through both.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception

from ..errors import GraphflowError

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "MissingAPIKeyError",
    "Resilience",
    "RetryConfig",
    "TRANSIENT_ERROR_TYPES",
    "error_type",
    "get_breaker",
    "is_local_url",
    "is_retryable",
    "is_transient",
    "reset_breakers",
    "resolve_api_key",
    "retry_after",
    "split_params",
]

log = logging.getLogger("graphflow.models")
T = TypeVar("T")

State = Literal["closed", "open", "half_open"]


class CircuitOpenError(GraphflowError):
    """A provider's circuit breaker is open: the call failed fast, nothing was sent.

    Attributes:
        name: what the breaker guards (``"openai http://..."``).
        retry_in: seconds until the breaker lets a trial call through.
    """

    def __init__(self, message: str, *, name: str = "", retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.name = name
        self.retry_in = retry_in


class MissingAPIKeyError(GraphflowError, ValueError):
    """A provider model was built without an API key (argument or environment variable)."""


# -- classifying errors --------------------------------------------------------------------------

_TRANSIENT_NAMES = {"APIConnectionError", "APITimeoutError", "TimeoutException",
                    "TransportError", "NetworkError", "RemoteProtocolError"}

# the ``type`` of a provider's error body that says "the provider failed, not your request":
# what arrives as an error *event* in the middle of a stream that had started with HTTP 200
# (the SDKs raise those with status 200, or with no status at all)
TRANSIENT_ERROR_TYPES = frozenset({
    "overloaded_error", "api_error", "rate_limit_error", "timeout_error",  # Anthropic
    "server_error", "service_unavailable",  # OpenAI and compatible servers
})


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def error_type(exc: BaseException) -> str | None:
    """The ``type`` in the provider's error body (``"overloaded_error"``, ``"server_error"``,
    ...): Anthropic's body is ``{"type": "error", "error": {"type": ...}}``, OpenAI's SDK keeps
    the inner ``{"type": ...}``."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        kind = inner.get("type") if isinstance(inner, dict) else body.get("type")
        if isinstance(kind, str) and kind != "error":
            return kind
    kind = getattr(exc, "type", None)
    return kind if isinstance(kind, str) else None


def _header(exc: BaseException, name: str) -> str | None:
    """Header ``name`` of the HTTP answer behind ``exc``, if there was one."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    try:
        return None if headers is None else headers.get(name)
    except (AttributeError, TypeError):
        return None


def _should_retry_header(exc: BaseException) -> bool | None:
    """The provider's ``x-should-retry`` answer (True / False), None when it gave none."""
    return {"true": True, "false": False}.get(_header(exc, "x-should-retry") or "")


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says the provider is failing (what the circuit breaker counts): HTTP
    429 and 5xx, an error body of a transient type (an ``overloaded_error`` event mid-stream,
    whatever its status), timeouts and connection errors."""
    if isinstance(exc, CircuitOpenError):
        return False
    if error_type(exc) in TRANSIENT_ERROR_TYPES:
        return True
    status = _status(exc)
    if status is not None and status >= 400:
        return status == 429 or status >= 500
    if status is not None:
        return False  # an error event in a 200 stream whose type is not a transient one
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


def is_retryable(exc: BaseException) -> bool:
    """True for errors worth retrying: the transient ones (:func:`is_transient`), unless the
    provider answered ``x-should-retry: false`` (and any error it marked ``x-should-retry:
    true``), as the SDKs' own retries do. Usable as ``RetryPolicy(retry_on=is_retryable)``."""
    if isinstance(exc, CircuitOpenError):
        return False
    told = _should_retry_header(exc)
    return told if told is not None else is_transient(exc)


def _answered(exc: BaseException) -> bool:
    """The provider answered (with a client error): it is up."""
    status = _status(exc)
    return status is not None and not is_transient(exc)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` / ``retry-after``), if any."""
    try:
        ms = _header(exc, "retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = _header(exc, "retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


# -- retries -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryConfig:
    """How a provider call is retried.

    Args:
        max_attempts: attempts in all, the first included (1: no retries).
        initial: the first backoff wait, in seconds; doubled after each failure.
        max_wait: the longest single wait; a ``retry-after`` above it ends the retries.
        jitter: randomise each backoff wait between half and all of it.
    """

    max_attempts: int = 4
    initial: float = 0.5
    max_wait: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryConfig.max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial < 0 or self.max_wait < 0:
            raise ValueError("RetryConfig waits must be >= 0")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based), without retry-after."""
        wait = min(self.max_wait, self.initial * 2 ** (attempt - 1))
        if self.jitter:
            wait = wait / 2 + random.uniform(0, wait / 2)
        return wait

    def wait_for(self, exc: BaseException, attempt: int) -> float:
        """The wait before the next attempt: the server's retry-after, else the backoff."""
        asked = retry_after(exc)
        return asked if asked is not None else self.backoff(attempt)


# -- the circuit breaker -------------------------------------------------------------------------

class CircuitBreaker:
    """Closed / open / half-open breaker for one provider endpoint.

    Args:
        failure_threshold: consecutive transient failures that open the circuit.
        reset_timeout: seconds the circuit stays open before a trial call is let through.
        clock: a monotonic clock in seconds (inject a fake one in tests).
        name: shown in :class:`CircuitOpenError` messages.
    """

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic, name: str = "provider") -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # a half-open trial call is in flight

    def __repr__(self) -> str:
        return (f"CircuitBreaker({self.name!r}, state={self.state!r}, "
                f"failures={self._failures}/{self.failure_threshold})")

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    @property
    def failures(self) -> int:
        """Consecutive transient failures counted so far."""
        return self._failures

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Let a call through, or raise :class:`CircuitOpenError` (open, or a trial running)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half_open" and not self._trial:
                self._trial = True
                return
            assert self._opened_at is not None
            retry_in = max(0.0, self._opened_at + self.reset_timeout - self.clock())
            why = ("a trial call is in flight" if state == "half_open"
                   else f"retrying in {retry_in:.1f} s")
        raise CircuitOpenError(
            f"circuit breaker for {self.name} is open after {self._failures} consecutive "
            f"failures (rate limits, 5xx, timeouts or connection errors); failing fast, {why}",
            name=self.name, retry_in=retry_in)

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_trial, self._trial = self._trial, False
            if was_trial or self._failures >= self.failure_threshold:
                if self._opened_at is None or was_trial:
                    log.warning("circuit breaker for %s opened after %d consecutive failures",
                                self.name, self._failures)
                self._opened_at = self.clock()  # (re)start the reset timer

    def release(self) -> None:
        """The call ended in a way that says nothing about the provider (e.g. cancelled)."""
        with self._lock:
            self._trial = False

    def record(self, exc: BaseException) -> None:
        """Count a failed call: transient -> failure; a client-error answer -> success."""
        if is_transient(exc):
            self.record_failure()
        elif _answered(exc):
            self.record_success()
        else:
            self.release()

    def reset(self) -> None:
        """Close the circuit and forget the failures."""
        self.record_success()


_BREAKERS: dict[tuple[str, str], CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def get_breaker(provider: str, base_url: str | None, **config: Any) -> CircuitBreaker:
    """The shared breaker of ``provider`` at ``base_url`` (made with ``config`` the first time)."""
    key = (provider, (base_url or "").rstrip("/"))
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(key)
        if breaker is None:
            name = f"{provider} {key[1]}" if key[1] else provider
            breaker = _BREAKERS[key] = CircuitBreaker(name=name, **config)
        return breaker


def reset_breakers() -> None:
    """Forget every shared breaker (tests)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


# -- both together -------------------------------------------------------------------------------

class Resilience:
    """Runs provider calls through a :class:`RetryConfig` and an optional :class:`CircuitBreaker`.

    Each attempt asks the breaker first (an open circuit raises :class:`CircuitOpenError`, which
    is never retried) and reports its outcome to it.
    """

    def __init__(self, retry: RetryConfig, breaker: CircuitBreaker | None, *,
                 describe: str = "provider call") -> None:
        self.retry = retry
        self.breaker = breaker
        self.describe = describe

    def _gives_up(self, exc: BaseException, attempt: int) -> bool:
        """After failed attempt number ``attempt`` with ``exc``: stop retrying?"""
        if not is_retryable(exc) or attempt >= self.retry.max_attempts:
            return True
        if self.breaker is not None and self.breaker.state == "open":
            return True  # our own failures opened it: raise the last real error, not ours
        asked = retry_after(exc)
        return asked is not None and asked > self.retry.max_wait

    # tenacity runs attempts 2.. (the first one runs outside it: no per-call retry set-up cost
    # on the happy path); ``state.attempt_number + 1`` is the overall attempt number
    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is None or self._gives_up(exc, state.attempt_number + 1)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return 0.0
        return self.retry.wait_for(exc, state.attempt_number + 1)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self._log_retry(exc, state.attempt_number + 1,
                        state.next_action.sleep if state.next_action else 0.0)

    def _log_retry(self, exc: BaseException | None, attempt: int, wait: float) -> None:
        log.info("%s: attempt %d failed (%s); retrying in %.2f s", self.describe, attempt,
                 _short(exc), wait)

    def _kwargs(self) -> dict[str, Any]:
        return {"stop": self._stop, "wait": self._wait, "reraise": True,
                "retry": retry_if_exception(is_retryable), "before_sleep": self._before_sleep}

    def _note(self, exc: BaseException, attempts: int) -> None:
        if getattr(exc, "_graphflow_noted", False) or isinstance(exc, CircuitOpenError):
            return
        try:
            if is_transient(exc) and _should_retry_header(exc) is False:
                note = (f"graphflow: {self.describe} failed ({_short(exc)}) and the provider "
                        f"answered 'x-should-retry: false': not retried")
            elif is_retryable(exc):
                asked = retry_after(exc)
                if self.breaker is not None and self.breaker.state == "open":
                    note = (f"graphflow: {self.describe} failed after {attempts} attempt(s); "
                            f"the circuit breaker is now open: calls fail fast for "
                            f"{self.breaker.reset_timeout:g} s")
                elif asked is not None and asked > self.retry.max_wait:
                    note = (f"graphflow: {self.describe} gave up: the server asked to wait "
                            f"{asked:.1f} s, more than RetryConfig.max_wait="
                            f"{self.retry.max_wait}")
                else:
                    note = f"graphflow: {self.describe} failed after {attempts} attempt(s)"
            elif _status(exc) is not None:
                note = (f"graphflow: {self.describe} got HTTP {_status(exc)}, a client error: "
                        f"not retried (fix the request, key or model name)")
            else:
                return
            exc.add_note(note)
            exc._graphflow_noted = True  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # exceptions that refuse attributes
            pass

    def call(self, fn: Callable[[], T], *, deferred: bool = False) -> T:
        """``fn()`` with retries, through the breaker.

        ``deferred=True`` (streams): a successful ``fn()`` is not reported to the breaker yet;
        report how the stream ended with :meth:`settle`. So a stream that opens with HTTP 200
        and then breaks counts as a failure, not as a success followed by one.
        """
        try:
            return self._once(fn, deferred)
        except Exception as exc:
            if self._gives_up(exc, 1):
                self._note(exc, 1)
                raise
            wait = self.retry.wait_for(exc, 1)
            self._log_retry(exc, 1, wait)
        time.sleep(wait)
        attempts = 1
        try:
            for attempt in Retrying(**self._kwargs()):
                with attempt:
                    attempts += 1
                    return self._once(fn, deferred)
        except Exception as exc:
            self._note(exc, attempts)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(self, fn: Callable[[], Awaitable[T]], *, deferred: bool = False) -> T:
        """``await fn()`` with retries (async sleeps), through the breaker (see :meth:`call`)."""
        try:
            return await self._aonce(fn, deferred)
        except Exception as exc:
            if self._gives_up(exc, 1):
                self._note(exc, 1)
                raise
            wait = self.retry.wait_for(exc, 1)
            self._log_retry(exc, 1, wait)
        await asyncio.sleep(wait)
        attempts = 1
        try:
            async for attempt in AsyncRetrying(**self._kwargs()):
                with attempt:
                    attempts += 1
                    return await self._aonce(fn, deferred)
        except Exception as exc:
            self._note(exc, attempts)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, fn: Callable[[], T], deferred: bool = False) -> T:
        breaker = self.breaker
        if breaker is None:
            return fn()
        breaker.before_call()
        try:
            result = fn()
        except BaseException as exc:
            breaker.record(exc)
            raise
        if not deferred:
            breaker.record_success()
        return result

    async def _aonce(self, fn: Callable[[], Awaitable[T]], deferred: bool = False) -> T:
        breaker = self.breaker
        if breaker is None:
            return await fn()
        breaker.before_call()
        try:
            result = await fn()
        except BaseException as exc:
            breaker.record(exc)
            raise
        if not deferred:
            breaker.record_success()
        return result

    def settle(self, exc: BaseException | None) -> None:
        """Report how a call made with ``deferred=True`` (a stream) ended: ``None`` when it
        completed; else the error (transient: a failure; anything else frees the breaker)."""
        breaker = self.breaker
        if breaker is None:
            return
        if exc is None:
            breaker.record_success()
        elif isinstance(exc, Exception):
            breaker.record(exc)
        else:  # GeneratorExit, cancellation: the caller stopped reading, says nothing
            breaker.release()


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "?"
    status = _status(exc)
    return f"{type(exc).__name__}, HTTP {status}" if status else type(exc).__name__


# -- configuration helpers shared by the provider models ----------------------------------------

def is_local_url(url: str | None) -> bool:
    """True when ``url`` points to this machine (127.0.0.0/8, localhost, ::1)."""
    if not url:
        return False
    host = (urlsplit(str(url)).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def resolve_api_key(api_key: str | None, env_var: str, owner: str,
                    base_url: str | None) -> str:
    """``api_key``, else ``$env_var``; neither -> :class:`MissingAPIKeyError` naming both."""
    key = api_key or os.environ.get(env_var)
    if key:
        return key
    hint = (" (a local OpenAI-compatible server that needs no key accepts any placeholder, "
            "e.g. api_key=\"local\")" if is_local_url(base_url) else "")
    raise MissingAPIKeyError(
        f"{owner} needs an API key: set the {env_var} environment variable or pass "
        f"api_key=...{hint}")


def split_params(create: Callable[..., Any], params: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split extra request ``params`` into keywords ``create`` (an SDK method) accepts and the
    rest, which go in ``extra_body`` so a parameter the installed SDK does not know still
    reaches the API."""
    if not params:
        return {}, {}
    try:
        known = set(inspect.signature(create).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return dict(params), {}
    known -= {"extra_body", "extra_headers", "extra_query"}
    direct = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    if "extra_body" in params:
        extra.pop("extra_body")
        extra = {**params["extra_body"], **extra}
    return direct, extra
