"""Download the audio behind an API ``url`` parameter, through net/'s SSRF-safe transport.

The address rules (public addresses only unless the deployment allows more), pinning, redirect and
size checks all live in :mod:`soundmark.net`; this module sets the limits of one download.
"""

from __future__ import annotations

from typing import BinaryIO

import httpx

from soundmark.net.addresses import AddressPolicy
from soundmark.net.transport import AsyncPinnedClient, Limits


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    policy: AddressPolicy | None = None,
    allow_private: bool = False,
    max_redirects: int = 5,
    transport: httpx.AsyncBaseTransport | None = None,
    sink: BinaryIO | None = None,
) -> bytes:
    """Download ``url`` (http/https only) and return its body — or, with ``sink``, write the body
    there as it arrives (memory stays flat whatever ``max_bytes``) and return b"".

    Every hop's host must resolve only to addresses ``policy`` allows (default: public ones;
    ``allow_private`` alone means every address). ``timeout`` bounds connecting and each read, and the
    whole download gets twice that. Raises :class:`~soundmark.net.transport.NetError` when refused or
    failed, :class:`~soundmark.errors.TooLongError` when the body exceeds ``max_bytes``.
    """
    limits = Limits(connect=timeout, read=timeout, total=2 * timeout, max_redirects=max_redirects)
    async with AsyncPinnedClient(policy or AddressPolicy(allow_all=allow_private), limits, transport) as client:
        return await client.download(url, max_bytes, sink)
