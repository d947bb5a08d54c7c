"""The web app's files (static/: plain HTML, CSS and ES modules, no build step), read once at
start-up into a content-hashed catalog (domain/asset_catalog.py)."""

from pathlib import Path

from openv_gateway.domain.asset_catalog import AssetCatalog

STATIC_DIR = Path(__file__).parent / "static"


def load_catalog(folder: Path = STATIC_DIR) -> AssetCatalog:
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    return AssetCatalog(files)
