"""Rules for importing a result from an external URL: which URLs and addresses may be fetched
(the SSRF guard's decisions) and what content is accepted. Pure: no I/O here.

The guard is applied where the connection is made (see `adapters.source`): the host is
resolved once, every resolved address must pass `AddressPolicy.allows`, and the connection goes
to one of those checked addresses, so a second DNS answer (rebinding) can never be used.
"""

from typing import Final
from urllib.parse import urlsplit

ALLOWED_SCHEMES: Final = frozenset({"http", "https"})


class ImportRefused(Exception):
    """The result cannot be imported and trying again will not help; `str()` is the reason."""


def check_url(url: str) -> str:
    """The host of an http(s) URL we are willing to fetch; ImportRefused otherwise.

    Only the scheme and the presence of a host are decided here; the host's addresses are
    checked when connecting.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on an invalid port
    except ValueError as exc:
        raise ImportRefused(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ImportRefused(f"URL scheme {scheme or '(none)'!r} is not allowed (http, https only)")
    if not parts.hostname:
        raise ImportRefused("URL has no host")
    return parts.hostname


def declared_size_too_large(content_length: str | None, max_bytes: int) -> bool:
    """Whether a response's Content-Length already exceeds the cap (absent or invalid: no)."""
    if content_length is None or not content_length.strip().isdigit():
        return False
    return int(content_length) > max_bytes
