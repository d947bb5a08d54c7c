"""The local stack against a real RunPod endpoint instead of the simulator.

Chosen when an endpoint id is given (`--runpod-endpoint` or `OPENV_RUNPOD_ENDPOINT_ID`). The
user's `OPENV_RUNPOD_*` settings then reach the bridge untouched; the API key comes only from
the environment (a flag would leave it in shell history and `ps`). RunPod must reach the
bridge's webhook from the internet, so a loopback or private webhook base URL is refused.
"""

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

#: Ports the tunnel targets default to in real mode (stable across restarts; random if taken).
BRIDGE_PORT = 8020
S3_PORT = 8333
_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The bridge's and the simulator's development keys: never a real RunPod key.
_DEV_KEYS = {"sim-key", "openv-local-runpod-key"}


class RunPodConfigError(ValueError):
    """Real-endpoint mode with missing or unusable settings; the message says what to do."""


@dataclass(frozen=True)
class RealRunPod:
    endpoint_id: str
    webhook_base_url: str
    #: None: the bridge's default, RunPod's API (https://api.runpod.ai/v2).
    base_url: str | None = None

    def service_env(self) -> dict[str, str]:
        """What the services get on top of the user's environment (which holds the key)."""
        env = {
            "OPENV_RUNPOD_ENDPOINT_ID": self.endpoint_id,
            "OPENV_WEBHOOK_BASE_URL": self.webhook_base_url,
        }
        if self.base_url:
            env["OPENV_RUNPOD_BASE_URL"] = self.base_url
        return env


def real_runpod_from(
    env: Mapping[str, str],
    *,
    endpoint_id: str | None = None,
    webhook_base_url: str | None = None,
    base_url: str | None = None,
) -> RealRunPod | None:
    """The real endpoint the flags and environment ask for, None for the simulator.

    Flags win over the environment. Raises RunPodConfigError when something is missing."""
    endpoint = (endpoint_id or env.get("OPENV_RUNPOD_ENDPOINT_ID") or "").strip()
    if not endpoint:
        if webhook_base_url or base_url:
            raise RunPodConfigError(
                "--webhook-base-url and --runpod-base-url only apply to a real RunPod endpoint: "
                "also give --runpod-endpoint ID (or set OPENV_RUNPOD_ENDPOINT_ID)."
            )
        return None
    if not _ENDPOINT_ID.match(endpoint):
        raise RunPodConfigError(
            f"RunPod endpoint id {endpoint!r} is not an endpoint id (letters, digits, - and _; "
            "the id from the endpoint's page, not its URL)."
        )
    key = env.get("OPENV_RUNPOD_API_KEY", "").strip()
    if not key or key in _DEV_KEYS:
        raise RunPodConfigError(
            "a real RunPod endpoint needs its API key in the environment: export "
            "OPENV_RUNPOD_API_KEY=... (never as a flag, so it stays out of shell history)."
        )
    webhook = (webhook_base_url or env.get("OPENV_WEBHOOK_BASE_URL") or "").strip()
    if not webhook:
        raise RunPodConfigError(
            "a real RunPod endpoint needs a public URL for the bridge's webhook: expose the "
            f"bridge (port {BRIDGE_PORT}) with a tunnel and pass --webhook-base-url URL (or set "
            "OPENV_WEBHOOK_BASE_URL)."
        )
    problem = public_url_problem(webhook)
    if problem is not None:
        raise RunPodConfigError(
            f"webhook base URL {webhook!r} {problem}: RunPod's servers could never deliver a "
            "webhook to it. Expose the bridge with a tunnel and pass its public URL."
        )
    base = (base_url or env.get("OPENV_RUNPOD_BASE_URL") or "").strip() or None
    return RealRunPod(endpoint, webhook.rstrip("/"), base.rstrip("/") if base else None)


def public_url_problem(url: str) -> str | None:
    """Why the internet could not reach `url` (a reason phrase), or None."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "is not an absolute http(s) URL"
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "is a loopback address"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a DNS name: whether it resolves publicly is the tunnel's business
    if address.is_loopback:
        return "is a loopback address"
    if address.is_unspecified or address.is_private or address.is_link_local:
        return "is not a public address"
    return None


def s3_public_problem(endpoint: str) -> str | None:
    """Why RunPod's workers could not reach the S3 endpoint `endpoint` (host[:port])."""
    return public_url_problem(f"http://{endpoint}")


def webhook_secret(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """A webhook secret for a public webhook: the user's, else one kept under `root`.

    The development default is public knowledge; with the webhook on the internet anyone could
    forge tokens with it. Kept in a file so in-flight jobs' tokens survive a restart."""
    if env.get("OPENV_WEBHOOK_SECRET"):
        return {}
    path = root / "webhook-secret"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
    return {"OPENV_WEBHOOK_SECRET": path.read_text().strip()}
