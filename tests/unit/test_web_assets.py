"""The web app's static files under content hashes: renamed when they (or a module they
import) change, every reference rewritten, nothing inline, no secret in the bundle."""

import re

import pytest

from openv_gateway.domain.asset_catalog import AssetCatalog, UnknownAsset
from openv_gateway.web import STATIC_DIR, load_catalog

PAGE = b'<link rel="stylesheet" href="/assets/s.css"><script type="module" src="/assets/a.js">'


def catalog(**files: bytes) -> AssetCatalog:
    return AssetCatalog({"index.html": PAGE, **{k.replace("_", "."): v for k, v in files.items()}})


def test_the_page_names_hashed_assets_that_are_served() -> None:
    built = catalog(s_css=b"body{}", a_js=b'import { x } from "./b.js";', b_js=b"export const x=1;")
    names = re.findall(rb"/assets/([\w.]+)", built.page)
    assert len(names) == 2
    assert all(re.fullmatch(rb"[as]\.[0-9a-f]{10}\.(css|js)", name) for name in names)
    for name in names:
        assert name.decode() in built.assets
    a = built.assets[built.url_of("a.js").removeprefix("/assets/")]
    assert f'"./{built.url_of("b.js").removeprefix("/assets/")}"'.encode() in a.body
    assert a.content_type.startswith("text/javascript")


def test_changing_an_imported_module_renames_its_importer() -> None:
    before = catalog(s_css=b"", a_js=b'import "./b.js";', b_js=b"1")
    after = catalog(s_css=b"", a_js=b'import "./b.js";', b_js=b"2")
    assert before.url_of("b.js") != after.url_of("b.js")
    assert before.url_of("a.js") != after.url_of("a.js")
    assert before.url_of("s.css") == after.url_of("s.css")


def test_a_missing_file_or_an_import_cycle_fails_at_start_up() -> None:
    with pytest.raises(UnknownAsset):
        catalog(s_css=b"", a_js=b'import "./gone.js";')
    with pytest.raises(UnknownAsset, match="cycle"):
        catalog(s_css=b"", a_js=b'import "./b.js";', b_js=b'import "./a.js";')


def test_the_real_bundle_loads_and_every_module_import_resolves() -> None:
    built = load_catalog()
    for name in (p.name for p in STATIC_DIR.glob("*.js")):
        body = built.assets[built.url_of(name).removeprefix("/assets/")].body.decode()
        for target in re.findall(r"""from\s*["']\./([^"']+)["']""", body):
            assert target in built.assets, f"{name} imports {target}"


def test_the_page_has_no_inline_script_or_style_and_no_secret() -> None:
    page = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert " style=" not in page and "<style" not in page
    assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers
    for path in STATIC_DIR.iterdir():
        text = path.read_text().lower()
        for word in ("secret", "openv-local", "service_role", "eyj"):
            assert word not in text, f"{path.name} holds {word!r}"
