"""The time zone of stream ``timestamp``s: an IANA name (``Europe/Moscow``, ``UTC``) or a fixed
offset (``+03:00``, ``-0530``, ``UTC+3``).

AudD writes stream timestamps as ``"YYYY-MM-DD HH:MM:SS"`` without a zone, and its own clients
(audd-cli, the widget and the Twitch extension) read them as UTC+3, so that is the default.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

AUDD_ZONE = "+03:00"  # what AudD's clients assume (audd-cli: time.FixedZone("UTC+3", 3*60*60))
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def parse_zone(name: str) -> tzinfo:
    """The zone ``name`` stands for; ValueError when it is neither an IANA name nor an offset."""
    text = name.strip()
    m = _OFFSET.fullmatch(text)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"time zone offset out of range: {name!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m.group(1) == "-" else delta)
    if text.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        hint = "use an IANA name such as Europe/Moscow or an offset such as +03:00"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from None


def format_timestamp(epoch: float, zone: str) -> str:
    """``epoch`` as AudD writes stream timestamps, in ``zone``."""
    return datetime.fromtimestamp(epoch, parse_zone(zone)).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str, zone: str) -> float | None:
    """The epoch second of a stream ``timestamp`` written by ``format_timestamp`` in ``zone``
    (None when it is not one: a store written with another format)."""
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=parse_zone(zone)).timestamp()
    except ValueError:
        return None
