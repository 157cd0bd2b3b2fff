"""Outgoing HTTP: the SSRF address policy (addresses.py), the one pinned-IP transport that every
download, stream source and callback uses (transport.py), and the playlists a stream URL may be
(playlists.py: HLS through the ``m3u8`` library, m3u, pls)."""

from soundmark.net.addresses import PUBLIC_ONLY, AddressPolicy, IPAddress, is_public_ip, parse_networks
from soundmark.net.transport import AsyncPinnedClient, Limits, NetError, PinnedClient, parse_url

__all__ = [
    "PUBLIC_ONLY",
    "AddressPolicy",
    "AsyncPinnedClient",
    "IPAddress",
    "Limits",
    "NetError",
    "PinnedClient",
    "is_public_ip",
    "parse_networks",
    "parse_url",
]
