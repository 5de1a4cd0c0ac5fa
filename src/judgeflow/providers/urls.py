"""How a server's URL is shown in names, limit keys and messages: without anything that could be a credential."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["display_url"]


def display_url(url: str) -> str:
    """The URL without user info or query (either could carry a credential), and without a trailing slash."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
