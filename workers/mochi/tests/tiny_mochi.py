"""A tiny, randomly initialised Mochi-1 pipeline (every part built from a small config here,
nothing downloaded), saved in the diffusers folder layout the worker loads from.

The transformer and VAE configs are diffusers' own fast-test ones; the T5 tokenizer and
encoder, which diffusers' tests download, are built in code. The transformer reads 256 text
tokens like the real model, so the worker's settings need nothing test-only."""

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLMochi,
    FlowMatchEulerDiscreteScheduler,
    MochiPipeline,
    MochiTransformer3DModel,
)
from transformers import T5Config, T5EncoderModel, T5Tokenizer

_WORDS = ["a", "the", "cat", "dog", "dance", "monkey", "red", "blue", "runs", "on"]


def tiny_pipeline() -> MochiPipeline:
    torch.manual_seed(0)
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        pooled_projection_dim=16,
        in_channels=12,
        out_channels=None,
        qk_norm="rms_norm",
        text_embed_dim=32,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=256,
    )
    vae = AutoencoderKLMochi(  # block channels must be multiples of 32 (GroupNorm(32))
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32),
        layers_per_block=(1, 1, 1, 1, 1),
    )
    pieces = [
        "<pad>",
        "</s>",
        "<unk>",
        *("\u2581" + w for w in _WORDS),
        *"abcdefghijklmnopqrstuvwxyz",
    ]
    vocab = [(piece, 0.0 if i < 3 else -float(i)) for i, piece in enumerate(pieces)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    text_encoder = T5EncoderModel(
        T5Config(  # d_model is the transformer's text_embed_dim
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    return MochiPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def save_tiny_model(folder: Path) -> Path:
    """The tiny pipeline in bf16, saved like the real weights' `bf16` variant; like
    genmo/mochi-1-preview, the text encoder has no bf16 copy (its one file is loaded and cast)."""
    tiny_pipeline().to(dtype=torch.bfloat16).save_pretrained(folder, variant="bf16")
    for weights in (folder / "text_encoder").glob("*.bf16.*"):
        weights.rename(weights.with_name(weights.name.replace(".bf16", "")))
    return folder


if __name__ == "__main__":  # for the end-to-end tests, which need it from another environment
    import sys

    print(save_tiny_model(Path(sys.argv[1])))
