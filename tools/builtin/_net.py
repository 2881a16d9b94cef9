"""Where ``http_get`` may connect, decided on the address actually connected to.

:class:`AddressPolicy` says which IP addresses may be contacted: by default only public ones
(not loopback, private, link-local, multicast, reserved, unspecified, shared, documentation or
cloud-metadata addresses, including IPv4 addresses hidden in IPv6 ones).
:class:`GuardedBackend` is an httpcore network backend that, for every new connection (the first
URL and every redirect hop to another origin), resolves the host once, checks every address it
resolves to, and connects to a checked address itself: the address checked is the address used,
so a DNS answer that changes between the check and the connection (DNS rebinding) cannot reach
anything else. It also holds the call's deadline: connecting, TLS, each write and each read get
at most the time left, so ``timeout`` bounds the whole call.

Imported by :func:`http_get` on first use (it imports httpcore).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpcore

from .http import HostNotAllowedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]

# Addresses that are "global" to Python's ipaddress module but must not be reached by default.
_ALSO_REFUSED = [ipaddress.ip_network(n) for n in (
    "192.0.0.0/24",       # IETF protocol assignments (Oracle Cloud's metadata is 192.0.0.192)
    "64:ff9b::/96",       # NAT64: the IPv4 address it embeds is checked too
)]
_METADATA = {ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")}


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _ALSO_REFUSED[1]:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> str | None:
    """What kind of non-public address ``ip`` is; None for a public unicast address."""
    if ip in _METADATA:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    inner = _embedded_ipv4(ip)
    if inner is not None:
        kind = _kind(inner)
        if kind is not None:
            return f"{kind} (embedded in an IPv6 address)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global or any(ip in net for net in _ALSO_REFUSED):
        return "non-public"
    return None


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, in any form a resolver accepts for IPv4:
    ``127.0.0.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``; None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class AddressPolicy:
    """Which addresses may be contacted: public ones, plus ``allow_private`` (True: every
    address; or networks such as ``["10.0.0.0/8", "127.0.0.1/32"]``)."""

    def __init__(self, allow_private: bool | Iterable[str] = False) -> None:
        self.allow_all = allow_private is True
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if not isinstance(allow_private, bool):
            if isinstance(allow_private, str):
                raise TypeError("http_get: allow_private takes True or a list of networks, "
                                f"not the str {allow_private!r}")
            for net in allow_private:
                try:
                    nets.append(ipaddress.ip_network(net, strict=False))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"http_get: allow_private: {net!r} is not a network "
                                     f"({exc})") from None
        self.networks = nets

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why ``host`` (at ``ip``) may not be contacted; None if it may."""
        if self.allow_all or any(ip in net for net in self.networks):
            return None
        kind = _kind(ip)
        if kind is None:
            return None
        shown = host if parse_ip(host) == ip else f"{host!r}, which resolves to {ip},"
        return (f"{shown} is a {kind} address; http_get only contacts public addresses unless "
                f"allow_private=True (or a list of networks) is given")


_RESOLVERS: ThreadPoolExecutor | None = None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve(host: str, port: int, resolver: Resolver | None, deadline: float) -> list[IPAddress]:
    """The addresses of ``host``, looked up once, within the deadline."""
    ip = parse_ip(host)
    if ip is not None:
        return [ip]
    global _RESOLVERS
    if _RESOLVERS is None:
        _RESOLVERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="http_get-dns")
    future = _RESOLVERS.submit(resolver or _system_resolver, host, port)
    try:
        answers = list(future.result(timeout=max(deadline - time.monotonic(), 0.0)))
    except FutureTimeout:
        raise httpcore.ConnectTimeout(f"resolving {host!r} took too long") from None
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
    out = []
    for answer in answers:
        address = parse_ip(str(answer).split("%", 1)[0])
        if address is None:
            raise httpcore.ConnectError(f"the resolver answered {answer!r} for {host!r}, "
                                        f"not an IP address")
        out.append(address)
    if not out:
        raise httpcore.ConnectError(f"{host!r} has no address")
    return out


def _left(timeout: float | None, deadline: float, error: type[Exception]) -> float:
    """The time an operation may take: its own timeout, cut to what is left of the call's."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, self._deadline, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, self._deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        left = _left(timeout, self._deadline, httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left),
                              self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses ``policy`` allows, to the address it checked, by
    ``deadline``."""

    def __init__(self, policy: AddressPolicy, deadline: float,
                 resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._deadline = deadline
        self._resolver = resolver
        self._tcp = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = resolve(host, port, self._resolver, self._deadline)
        for ip in addresses:  # every answer is checked: one bad answer refuses the host
            reason = self._policy.refusal(host, ip)
            if reason is not None:
                raise HostNotAllowedError(f"{reason}; the request was not sent")
        error: Exception | None = None
        for ip in addresses:
            try:
                stream = self._tcp.connect_tcp(
                    str(ip), port, _left(timeout, self._deadline, httpcore.ConnectTimeout),
                    local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return DeadlineStream(stream, self._deadline)
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("http_get does not connect to Unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
