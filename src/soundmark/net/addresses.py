"""Which IP addresses an outgoing connection may reach: the address policy of net/.

A URL given by a client (``url=``, a stream, a callback) makes this server connect somewhere on
the client's behalf (SSRF). By default only globally routable unicast addresses are allowed —
loopback, private, link-local (cloud metadata), carrier-grade NAT, multicast, reserved and the
IPv6 forms that wrap such an IPv4 address are refused. A deployment can admit exactly some
networks (``Settings.allowed_networks``) or everything (``Settings.allow_private_urls``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soundmark.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix, embeds an IPv4 address
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)


def is_public_ip(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address, looking inside IPv6 wrappings of IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_ip(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return is_public_ip(ip.sixtofour)
        if int(ip) >> 32 == 0 or ip in _NAT64_LOCAL or ip.is_site_local:  # IPv4-compatible ::a.b.c.d
            return False
    elif ip in _SHARED:
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs such as ``127.0.0.0/8`` or ``fd00::/8`` (a bare address is a /32 or /128); ValueError if one
    is not a network. Host bits are allowed (``10.1.2.3/24`` means ``10.1.2.0/24``)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus ``networks``; or everything with ``allow_all``."""

    allow_all: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls(settings.allow_private_urls, parse_networks(settings.allowed_networks))

    def allows(self, ip: IPAddress) -> bool:
        if self.allow_all or is_public_ip(ip):
            return True
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(plain.version == net.version and plain in net for net in self.networks)


PUBLIC_ONLY = AddressPolicy()
