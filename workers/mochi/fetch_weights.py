"""Downloads Mochi-1 (genmo/mochi-1-preview, diffusers layout) into the folder the worker loads
(OPENV_MOCHI_MODEL_DIR): at image build time (the Dockerfile's `baked` target) or onto a RunPod
network volume, from a pod that has the volume mounted:

    python /opt/openv/fetch_weights.py /runpod-volume/mochi-1-preview [--revision COMMIT]

Only what `MochiPipeline.from_pretrained(dir, variant="bf16")` reads is fetched: the bf16
transformer and VAE, the T5 text encoder (the repository has one precision of it), tokenizer,
scheduler and configs; not the float32 transformer and VAE beside them. About 30 GB (see the
README, "The GPU worker"). Downloads resume: run it again after an interruption."""

import argparse
import os
import sys
from pathlib import Path

REPO_ID = "genmo/mochi-1-preview"
#: Files of the bf16 variant, as huggingface_hub's `allow_patterns` (fnmatch on repo paths).
ALLOW_PATTERNS = (
    "model_index.json",
    "scheduler/*",
    "tokenizer/*",
    "text_encoder/*",
    "transformer/config.json",
    "transformer/*.bf16*",
    "vae/config.json",
    "vae/*.bf16*",
)


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path, help="folder to fill, e.g. /models/mochi-1-preview")
    parser.add_argument("--revision", default="main", help="a commit of the model repository")
    args = parser.parse_args(argv)

    # The worker image sets HF_HUB_OFFLINE=1 (a job never downloads); this script must.
    os.environ["HF_HUB_OFFLINE"] = "0"
    from huggingface_hub import snapshot_download

    snapshot_download(
        REPO_ID,
        revision=args.revision,
        local_dir=args.target,
        allow_patterns=list(ALLOW_PATTERNS),
    )
    if not (args.target / "model_index.json").is_file():
        print(f"ERROR: no model_index.json in {args.target} after the download", file=sys.stderr)
        return 1
    print(f"{REPO_ID}@{args.revision}: {folder_size(args.target) / 1e9:.1f} GB in {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
