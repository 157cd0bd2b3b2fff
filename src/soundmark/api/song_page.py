"""The song page that ``song_link`` points at (``/song/<id>``): one small, self-contained HTML5 document.

No scripts, no external assets; every catalog value is HTML-escaped, and only ``http(s)`` links are
ever put in an ``href``.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlparse

from soundmark.audd.metadata import provider_blocks
from soundmark.catalog.models import Track

_CSS = """
:root { color-scheme: light dark; --fg: #1d1d1f; --muted: #6e6e73; --bg: #f5f5f7; --card: #fff;
  --accent: #0b66d6; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #f5f5f7; --muted: #a1a1a6; --bg: #111; --card: #1c1c1e; --accent: #5aa2ff; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 2rem 1rem; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 36rem; margin: 0 auto; background: var(--card); border-radius: 12px;
  padding: 1.5rem 1.75rem; box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }
h1 { margin: 0; font-size: 1.6rem; line-height: 1.25; overflow-wrap: anywhere; }
.artist { margin: .25rem 0 1.25rem; font-size: 1.15rem; color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
ul.links { list-style: none; padding: 0; margin: 1.5rem 0 0; display: flex; flex-wrap: wrap; gap: .5rem; }
ul.links a { display: inline-block; padding: .35rem .8rem; border: 1px solid var(--accent);
  border-radius: 999px; color: var(--accent); text-decoration: none; }
ul.links a:hover { background: var(--accent); color: var(--card); }
footer { margin-top: 1.5rem; font-size: .8rem; color: var(--muted); }
"""

_SERVICES = (
    ("spotify", "Spotify"),
    ("apple_music", "Apple Music"),
    ("deezer", "Deezer"),
    ("musicbrainz", "MusicBrainz"),
)


def format_duration(seconds: float) -> str:
    """``M:SS``, or ``H:MM:SS`` from an hour up."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _safe_url(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    parsed = urlparse(url.strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


def service_links(track: Track) -> list[tuple[str, str]]:
    """(service name, URL) for each external service the catalog knows this track on."""
    blocks = provider_blocks(track, [name for name, _ in _SERVICES])
    links: list[tuple[str, str]] = []
    for name, label in _SERVICES:
        block = blocks.get(name)
        url: object = None
        if name == "spotify" and isinstance(block, dict):
            urls = block.get("external_urls")
            url = urls.get("spotify") if isinstance(urls, dict) else None
        elif name == "apple_music" and isinstance(block, dict):
            url = block.get("url")
        elif name == "deezer" and isinstance(block, dict):
            url = block.get("link")
        elif name == "musicbrainz" and isinstance(block, list) and block:
            mbid = block[0].get("id")
            if isinstance(mbid, str) and mbid:
                url = f"https://musicbrainz.org/recording/{mbid}"
        if (safe := _safe_url(url)) is not None:
            links.append((label, safe))
    return links


def _page(title: str, body: str, head_extra: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n{head_extra}<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def render_song_page(track: Track, base_url: str) -> str:
    """The HTML page for ``track``; ``base_url`` is the server's public root, used for the canonical
    link (``<base_url>/song/<id>``)."""
    meta = track.meta
    title = meta.title or "Untitled"
    heading = escape(title)
    page_title = escape(f"{title} — {meta.artist}" if meta.artist else title)
    canonical = f"{base_url.rstrip('/')}/song/{track.id}"

    rows = [
        ("Album", meta.album),
        ("Released", meta.release_date),
        ("Label", meta.label),
        ("ISRC", meta.isrc),
        ("UPC", meta.upc),
        ("Duration", format_duration(track.duration) if track.duration > 0 else None),
    ]
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>\n" for k, v in rows if v)
    parts = [f"<h1>{heading}</h1>\n"]
    if meta.artist:
        parts.append(f'<p class="artist">{escape(meta.artist)}</p>\n')
    if facts:
        parts.append(f"<dl>\n{facts}</dl>\n")
    links = service_links(track)
    if links:
        items = "".join(
            f'<li><a href="{escape(url)}" rel="noopener noreferrer">{escape(label)}</a></li>\n' for label, url in links
        )
        parts.append(f'<ul class="links">\n{items}</ul>\n')
    parts.append("<footer>Recognized by soundmark</footer>\n")

    head = (
        f'<link rel="canonical" href="{escape(canonical)}">\n'
        f'<meta property="og:url" content="{escape(canonical)}">\n'
        '<meta property="og:type" content="music.song">\n'
        f'<meta property="og:title" content="{page_title}">\n'
    )
    return _page(page_title, "".join(parts), head)


def render_not_found(track_id: str) -> str:
    """The page for a song id the catalog does not have."""
    body = (
        "<h1>Song not found</h1>\n"
        f'<p class="artist">There is no song <code>{escape(track_id)}</code> in this catalog.</p>\n'
        "<footer>soundmark</footer>\n"
    )
    return _page("Song not found", body, '<meta name="robots" content="noindex">\n')
