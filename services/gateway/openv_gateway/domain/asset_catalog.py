"""The web app's static files under content-hashed names (`app.3f2a9c1b04.js`), so browsers
may cache them for a year: a changed file gets a new name. Pure: it is given the files'
bytes; the gateway reads them once at start-up (openv_gateway.web)."""

import hashlib
import re
from dataclasses import dataclass

#: `from "./x.js"`, `import "./x.js"` and `import("./x.js")` of one module by another.
_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])\./([\w.-]+\.js)\2""")
#: `href="/assets/x.css"` / `src="/assets/x.js"` in the page.
_PAGE_REF = re.compile(r"""(["'])/assets/([\w.-]+)\1""")

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


class UnknownAsset(Exception):
    """A page or module names a file that is not there."""


def hashed_name(name: str, body: bytes) -> str:
    stem, dot, ext = name.rpartition(".")
    digest = hashlib.sha256(body).hexdigest()[:10]
    return f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}"


class AssetCatalog:
    """`files`: every static file by name, `page`: the name of the HTML page among them.

    A module's hash covers its imports' hashed names, so changing a module renames every
    module that imports it too (no stale cached importer pointing at an old name)."""

    def __init__(self, files: dict[str, bytes], page: str = "index.html") -> None:
        self._files = files
        self._names: dict[str, str] = {}
        self.assets: dict[str, Asset] = {}
        for name in sorted(files):
            if name != page:
                self._hash(name, ())
        self.page = _PAGE_REF.sub(
            lambda m: f"{m[1]}/assets/{self._resolve(m[2], ())}{m[1]}",
            files[page].decode(),
        ).encode()

    def url_of(self, name: str) -> str:
        return f"/assets/{self._names[name]}"

    def _resolve(self, name: str, chain: tuple[str, ...]) -> str:
        if name not in self._files:
            raise UnknownAsset(name)
        return self._hash(name, chain)

    def _hash(self, name: str, chain: tuple[str, ...]) -> str:
        if name in self._names:
            return self._names[name]
        if name in chain:
            raise UnknownAsset(f"import cycle: {' -> '.join((*chain, name))}")
        body = self._files[name]
        if name.endswith(".js"):
            body = _IMPORT.sub(
                lambda m: f"{m[1]}{m[2]}./{self._resolve(m[3], (*chain, name))}{m[2]}",
                body.decode(),
            ).encode()
        final = hashed_name(name, body)
        ext = name[name.rfind(".") :]
        self._names[name] = final
        self.assets[final] = Asset(body, CONTENT_TYPES.get(ext, "application/octet-stream"))
        return final
