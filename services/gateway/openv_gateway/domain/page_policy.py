"""The security headers of the web app's pages: a Content-Security-Policy without inline
scripts or styles, which may reach only this origin, Supabase Auth and the S3 host the
playback URLs point at."""


def origin_of(url: str) -> str:
    """`https://x.supabase.co/anything` -> `https://x.supabase.co` (CSP sources are origins)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ""
    return f"{scheme}://{rest.split('/', 1)[0]}"


def security_headers(*, connect: list[str], media: list[str]) -> dict[str, str]:
    """`connect`: origins the page may fetch besides its own; `media`: origins of its videos
    and stills (the presigned S3 URLs)."""
    extra_connect = " ".join(o for o in connect if o)
    extra_media = " ".join(o for o in media if o)
    policy = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self' {extra_connect}".rstrip(),
            f"media-src 'self' {extra_media}".rstrip(),
            f"img-src 'self' data: {extra_media}".rstrip(),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
