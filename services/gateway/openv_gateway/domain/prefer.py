"""The `Prefer` request header (RFC 7240): only the `wait` preference is acted upon."""

from typing import Final

MAX_WAIT_S: Final = 60


class InvalidPreference(ValueError):
    pass


def parse_wait(header: str | None, max_wait_s: int = MAX_WAIT_S) -> int | None:
    """Seconds of `wait=N`, or None when absent. Other preferences are ignored, as RFC 7240
    asks; a `wait` that is not an integer 0..max_wait_s is an error the client must fix."""
    if header is None:
        return None
    wait: int | None = None
    for item in header.split(","):
        # A preference may carry parameters after ';': only the first token is the preference.
        token = item.split(";", 1)[0].strip()
        if not token:
            continue
        name, sep, value = token.partition("=")
        if name.strip().lower() != "wait":
            continue
        raw = value.strip().strip('"')
        if not sep or not raw.isdigit() or not raw.isascii():
            raise InvalidPreference("wait must be a whole number of seconds")
        seconds = int(raw)
        if seconds > max_wait_s:
            raise InvalidPreference(f"wait must be at most {max_wait_s} seconds")
        wait = seconds
    return wait
