"""bench_gpu.py (run by hand on a GPU) refuses cleanly where it cannot run, and
fetch_weights.py asks for exactly the files the worker loads."""

from pathlib import Path

import pytest
import torch
from huggingface_hub.utils import filter_repo_objects

import bench_gpu
import fetch_weights


def test_bench_refuses_without_cuda(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main([]) == bench_gpu.UNAVAILABLE
    assert "no CUDA device" in capsys.readouterr().err


def test_bench_refuses_without_weights(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("OPENV_MOCHI_MODEL_DIR", str(tmp_path))
    assert bench_gpu.main([]) == bench_gpu.UNAVAILABLE
    err = capsys.readouterr().err
    assert "no Mochi-1 weights" in err and str(tmp_path) in err


def test_bench_refuses_a_job_outside_the_api_bounds() -> None:
    with pytest.raises(SystemExit) as exit_:
        bench_gpu.main(["--frames", "30"])
    assert exit_.value.code == 2


#: genmo/mochi-1-preview's files (its commit "Add Diffusers weights", 45beef3).
REPO_FILES = [
    "README.md",
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model-00001-of-00002.safetensors",
    "text_encoder/model-00002-of-00002.safetensors",
    "text_encoder/model.safetensors.index.json",
    "tokenizer/added_tokens.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/spiece.model",
    "tokenizer/tokenizer_config.json",
    "transformer/config.json",
    *(f"transformer/diffusion_pytorch_model-0000{i}-of-00005.safetensors" for i in range(1, 6)),
    *(f"transformer/diffusion_pytorch_model.bf16-0000{i}-of-00003.safetensors" for i in (1, 2, 3)),
    "transformer/diffusion_pytorch_model.safetensors.index.bf16.json",
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.bf16.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
]


def test_fetch_weights_takes_the_bf16_variant_and_nothing_else() -> None:
    chosen = set(filter_repo_objects(REPO_FILES, allow_patterns=list(fetch_weights.ALLOW_PATTERNS)))
    weights = {f for f in chosen if f.endswith(".safetensors")}
    assert weights == {
        "text_encoder/model-00001-of-00002.safetensors",
        "text_encoder/model-00002-of-00002.safetensors",
        "transformer/diffusion_pytorch_model.bf16-00001-of-00003.safetensors",
        "transformer/diffusion_pytorch_model.bf16-00002-of-00003.safetensors",
        "transformer/diffusion_pytorch_model.bf16-00003-of-00003.safetensors",
        "vae/diffusion_pytorch_model.bf16.safetensors",
    }
    for needed in (
        "model_index.json",
        "scheduler/scheduler_config.json",
        "tokenizer/spiece.model",
        "tokenizer/tokenizer_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors.index.json",
        "transformer/config.json",
        "transformer/diffusion_pytorch_model.safetensors.index.bf16.json",
        "vae/config.json",
    ):
        assert needed in chosen
    assert "transformer/diffusion_pytorch_model.safetensors.index.json" not in chosen
    assert "README.md" not in chosen
