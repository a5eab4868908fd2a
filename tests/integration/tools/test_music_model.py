"""generate_music on a real local MusicGen model.

The model is a tiny MusicGen (T5 text encoder, EnCodec audio codec, 1-layer decoder) built in
code with random weights, with a word-level tokenizer, written with `save_pretrained` and
loaded back from disk by the server, as a real model folder would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from sogni_intelligence.config import Settings
from sogni_intelligence.media.music.neural import MusicModel
from sogni_intelligence.tools.audio_tools import TOOLS
from sogni_intelligence.tools.base import ToolContext, execute
from tests.integration.tools.conftest import asset_file, ffprobe, model_device

GENERATE = next(tool for tool in TOOLS if tool.name == "generate_music")
WORDS = ["calm", "piano", "rock", "drums", "music", "for", "studying"]


def build_tiny_musicgen(directory: Path) -> Path:
    """A random-init MusicGen at 8 kHz, 25 frames a second, with at most 300 positions."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        PreTrainedTokenizerFast,
        T5Config,
    )

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {word: i + 3 for i, word in enumerate(WORDS)}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    audio = EncodecConfig(
        sampling_rate=8000,
        audio_channels=1,
        num_filters=4,
        codebook_size=16,
        codebook_dim=8,
        hidden_size=8,
        upsampling_ratios=[8, 5, 4, 2],
        target_bandwidths=[1.0],
        num_lstm_layers=1,
        num_residual_layers=1,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=16,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        num_codebooks=audio.num_quantizers,
        max_position_embeddings=300,
        pad_token_id=16,
        bos_token_id=16,
    )
    text = T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    config = MusicgenConfig(
        text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict()
    )
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config)
    model.generation_config.decoder_start_token_id = 16
    model.generation_config.pad_token_id = 16
    folder = directory / "tiny-musicgen"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def music_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_musicgen(tmp_path_factory.mktemp("models"))


def _attach(ctx: ToolContext, folder: Path) -> None:
    model = {"path": str(folder), "aliases": ["musicgen-small"], "device": model_device()}
    settings = Settings(music_model=model)
    assert settings.music_model is not None
    ctx.services.music = MusicModel(settings.music_model)


async def _generate(ctx: ToolContext, **arguments: object) -> dict:
    return await execute(GENERATE, {"prompt": "calm piano", "duration": 10} | arguments, ctx)


async def test_the_alias_runs_the_model_and_the_file_has_the_requested_length(
    ctx: ToolContext, music_model: Path, progress_log: list
) -> None:
    _attach(ctx, music_model)
    result = await _generate(ctx, model="musicgen-small", outputFormat="wav", seed=5, bpm=90)
    assert result["ok"], result
    assert result["backend"] == "transformers-musicgen" and result["model"] == "musicgen-small"
    path = await asset_file(ctx, result)
    stream = ffprobe(path)["streams"][0]
    assert stream["codec_name"] == "pcm_s16le"
    assert abs(float(stream["duration"]) - 10.0) < 0.05
    record = await ctx.store.get(result["output_assets"][0]["asset_id"], ctx.owner)
    assert record is not None and record.meta["model"] == music_model.name
    assert record.meta["prompt"] == "calm piano, 90 bpm" and record.meta["seed"] == 5
    assert any(message and "tiny-musicgen" in message for _, message in progress_log)
    again = await _generate(ctx, model="musicgen-small", outputFormat="wav", seed=5, bpm=90)
    assert (await asset_file(ctx, again)).read_bytes() == path.read_bytes()


async def test_other_ids_stay_on_the_midi_composer(ctx: ToolContext, music_model: Path) -> None:
    _attach(ctx, music_model)
    result = await _generate(ctx, model="midi", outputFormat="wav")
    assert result["ok"], result
    assert result["backend"] == "midi-fluidsynth"
    unknown = await _generate(ctx, model="nope")
    assert unknown["error_type"] == "PARAMETER_INVALID" and "musicgen-small" in unknown["message"]


async def test_a_piece_longer_than_the_model_makes_is_parameter_invalid(
    ctx: ToolContext, music_model: Path
) -> None:
    _attach(ctx, music_model)
    result = await _generate(ctx, model="musicgen-small", duration=30)
    assert result["error_type"] == "PARAMETER_INVALID"
    assert "at most 11 seconds" in result["message"]
