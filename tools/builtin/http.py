"""``http_get(allowed_hosts)``: a GET tool limited to an allow-list of hosts.

* The host of every URL — the first one and every redirect target — is checked against the
  allow-list *before* any connection is made; redirects are followed by hand (never by httpx)
  so that one leading off the list is refused.
* Only ``http``/``https``; no proxies, ``.netrc`` credentials or other settings taken from the
  environment (``trust_env=False``).
* The body is read in chunks and cut at ``max_bytes``; the whole call is bounded by
  ``timeout`` seconds (connecting, each read, and the total).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from ..base import Tool

__all__ = ["HostNotAllowedError", "http_get"]

MAX_REDIRECTS = 5


class HostNotAllowedError(PermissionError):
    """The URL's host (or a redirect's) is not on the allow-list."""


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
             max_bytes: int = 1_000_000) -> Tool:
    """A tool that fetches a URL with GET, only from the allowed hosts.

    Args:
        allowed_hosts: host names the tool may contact (exact match, case-insensitive;
            ``"*.example.com"`` matches its subdomains; ``"host:port"`` also pins the port).
        timeout: seconds for the whole request (connecting, reading, following redirects).
        max_bytes: the most bytes of the body returned (the rest is not downloaded).

    Returns:
        A :class:`~graphflow.tools.Tool` named ``"http_get"`` taking ``url``, returning the
        body as text (cut at ``max_bytes``, with a note). A host off the list raises
        :class:`HostNotAllowedError`, a timeout :class:`TimeoutError`, an HTTP error status
        or a network failure :class:`ConnectionError`.
    """
    import httpx  # imported on use: `import graphflow.tools.builtin` stays light

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
        deadline = time.monotonic() + timeout
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"GET {url!r} timed out after {timeout:g}s")
                try:
                    with client.stream("GET", current,
                                       timeout=httpx.Timeout(remaining)) as response:
                        if response.is_redirect:
                            location = response.headers.get("location", "")
                            target = current.join(location)
                            try:
                                check(target, str(target))
                            except HostNotAllowedError as exc:
                                raise HostNotAllowedError(
                                    f"{url!r} redirects to {str(target)!r}: {exc}") from None
                            current = target
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
                except httpx.TimeoutException:
                    raise TimeoutError(f"GET {url!r} timed out after {timeout:g}s") from None
                except httpx.HTTPError as exc:
                    raise ConnectionError(f"GET {str(current)!r} failed: "
                                          f"{type(exc).__name__}: {exc}") from None
            raise ConnectionError(f"GET {url!r}: more than {MAX_REDIRECTS} redirects")

    return Tool(fetch, name="http_get")


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
