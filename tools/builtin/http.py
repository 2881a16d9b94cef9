"""``http_get(allowed_hosts)``: a GET tool limited to an allow-list of hosts.

* The host of every URL — the first one and every redirect target — is checked against the
  allow-list *before* any connection is made; redirects are followed by hand (never by httpx)
  so that one leading off the list is refused.
* Then the *addresses* it resolves to are checked, for every connection (the first URL and
  every redirect hop): loopback, private, link-local, multicast, reserved, unspecified, shared
  and cloud-metadata addresses (IPv4 and IPv6, IPv4 inside IPv6, numeric host forms such as
  ``2130706433``) are refused unless ``allow_private`` opts in. The connection is made to the
  address that was checked (no second DNS lookup that could answer differently).
* Only ``http``/``https``; no proxies, ``.netrc`` credentials or other settings taken from the
  environment (``trust_env=False``).
* The body is read in chunks and cut at ``max_bytes``; ``timeout`` is one deadline for the whole
  call: resolving, connecting, TLS, every redirect and every read get only the time left.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..base import Tool

__all__ = ["HostNotAllowedError", "http_get"]

MAX_REDIRECTS = 5


class HostNotAllowedError(PermissionError):
    """The URL's host (or a redirect's) is not on the allow-list, or it resolves to an address
    the tool may not contact (loopback, private, metadata, ...)."""


def _normalize_host(host: str) -> str:
    return host.strip().lower().rstrip(".").strip("[]")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _allowed(host: str, port: int | None, rules: list[tuple[str, int | None]]) -> bool:
    host = _normalize_host(host)
    for pattern, rule_port in rules:
        if rule_port is not None and rule_port != port:
            continue
        if pattern.startswith("*."):
            if not _is_ip(host) and host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def _parse_rules(allowed_hosts: Iterable[str]) -> list[tuple[str, int | None]]:
    rules: list[tuple[str, int | None]] = []
    for entry in allowed_hosts:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"http_get: allowed_hosts entries must be host names, "
                             f"got {entry!r}")
        text = entry.strip()
        if "://" in text or "/" in text:
            raise ValueError(f"http_get: allowed_hosts entries are host names (optionally "
                             f"'host:port'), not URLs: {entry!r}")
        port: int | None = None
        if text.startswith("["):  # [::1]:8080
            host, _, rest = text[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = int(port_text)
        else:
            host = text
        rules.append((_normalize_host(host), port))
    if not rules:
        raise ValueError("http_get: allowed_hosts is empty; no URL could be fetched")
    return rules


def http_get(allowed_hosts: Iterable[str], timeout: float = 10,
             max_bytes: int = 1_000_000, *, allow_private: bool | Iterable[str] = False,
             resolver: Callable[[str, int], Iterable[str]] | None = None) -> Tool:
    """A tool that fetches a URL with GET, only from the allowed hosts.

    Args:
        allowed_hosts: host names the tool may contact (exact match, case-insensitive;
            ``"*.example.com"`` matches its subdomains; ``"host:port"`` also pins the port).
        timeout: seconds for the whole call (resolving, connecting, following redirects,
            reading the body): one deadline, not a limit per operation.
        max_bytes: the most bytes of the body returned (the rest is not downloaded).
        allow_private: by default only public addresses are contacted, whatever the host name
            resolves to; ``True`` allows every address (e.g. a service on localhost), a list of
            networks (``["10.1.0.0/16", "127.0.0.1/32"]``) allows just those.
        resolver: ``resolver(host, port) -> IP address strings``, called once per connection
            instead of the system's DNS (e.g. a fixed map of names); the answers are checked
            like any others.

    Returns:
        A :class:`~graphflow.tools.Tool` named ``"http_get"`` taking ``url``, returning the
        body as text (cut at ``max_bytes``, with a note). A host off the list, or one that
        resolves to an address not allowed, raises :class:`HostNotAllowedError`; a timeout
        :class:`TimeoutError`; an HTTP error status or a network failure
        :class:`ConnectionError`.
    """
    import httpx  # imported on use: `import graphflow.tools.builtin` stays light

    from ._net import AddressPolicy

    policy = AddressPolicy(allow_private)
    rules = _parse_rules(allowed_hosts)
    shown_hosts = ", ".join(sorted({h if p is None else f"{h}:{p}" for h, p in rules}))

    def check(url: httpx.URL, original: str) -> None:
        if url.scheme not in ("http", "https"):
            raise ValueError(f"only http and https URLs can be fetched, not {str(url)!r}")
        if not url.host:
            raise ValueError(f"the URL {original!r} has no host")
        if not _allowed(url.host, url.port or (443 if url.scheme == "https" else 80), rules):
            raise HostNotAllowedError(
                f"the host {url.host!r} is not on the allow-list ({shown_hosts}); "
                f"the request was not sent")

    def fetch(url: str) -> str:
        """Fetch a web page or API response with an HTTP GET request and return its text.

        Args:
            url: the absolute http(s) URL to fetch.
        """
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ValueError(f"invalid URL {url!r}: {exc}") from None
        check(current, url)
        first = current
        deadline = time.monotonic() + timeout
        with httpx.Client(follow_redirects=False, trust_env=False,
                          transport=_guarded_transport(policy, deadline, resolver)) as client:
            for _ in range(MAX_REDIRECTS + 1):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"GET {url!r} timed out after {timeout:g}s")
                try:
                    with client.stream("GET", current,
                                       timeout=httpx.Timeout(remaining)) as response:
                        if response.is_redirect:
                            current = current.join(response.headers.get("location", ""))
                            check(current, str(current))
                            continue
                        body, total, cut = _read(response, max_bytes, deadline, url, timeout)
                        if response.status_code >= 400:
                            raise ConnectionError(
                                f"GET {str(current)!r} failed: HTTP {response.status_code} "
                                f"{response.reason_phrase}: "
                                f"{_decode(body, response)[:500]}")
                        text = _decode(body, response)
                        if cut:
                            text += (f"\n[... truncated after {max_bytes} bytes"
                                     f"{f' of {total}' if total else ''}]")
                        return text
                except HostNotAllowedError as exc:  # the host's name, or its address
                    if current is first:
                        raise
                    raise HostNotAllowedError(
                        f"{url!r} redirects to {str(current)!r}: {exc}") from None
                except httpx.TimeoutException:
                    raise TimeoutError(f"GET {url!r} timed out after {timeout:g}s") from None
                except httpx.HTTPError as exc:
                    raise ConnectionError(f"GET {str(current)!r} failed: "
                                          f"{type(exc).__name__}: {exc}") from None
            raise ConnectionError(f"GET {url!r}: more than {MAX_REDIRECTS} redirects")

    return Tool(fetch, name="http_get")


def _guarded_transport(policy: Any, deadline: float, resolver: Any) -> Any:
    """httpx's transport over a connection pool whose every connection goes through
    :class:`._net.GuardedBackend` (the address check, the pinning and the deadline)."""
    import httpcore
    import httpx

    from ._net import GuardedBackend

    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no public way to give its transport a network backend: replace the pool it
    # built (unused so far) by one with ours. tests/test_builtin_tools.py fails loudly if an
    # httpx release changes this.
    transport._pool.close()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=GuardedBackend(policy, deadline, resolver))
    return transport


def _read(response: Any, max_bytes: int, deadline: float, url: str,
          timeout: float) -> tuple[bytes, int | None, bool]:
    """Read at most ``max_bytes`` of the body before ``deadline``: (body, length, was cut)."""
    length = response.headers.get("content-length")
    total = int(length) if length and length.isdigit() else None
    chunks: list[bytes] = []
    size = 0
    cut = False
    for chunk in response.iter_bytes():  # as the data arrives (a chunk_size would buffer)
        if time.monotonic() > deadline:
            raise TimeoutError(f"GET {url!r} timed out after {timeout:g}s")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            cut = True
            break
    body = b"".join(chunks)[:max_bytes]
    return body, total, cut


def _decode(body: bytes, response: Any) -> str:
    encoding = response.charset_encoding or "utf-8"
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")
