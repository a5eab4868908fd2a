"""Music from a local transformers text-to-music model (MusicGen), for operators with one.

The model makes a waveform from the prompt, one audio frame per generated token; the seed
decides the sampling, so a seed gives the same piece. The raw waveform is then cut to the exact
length and encoded like the MIDI composer's (`render.finish`).
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sogni_intelligence.config import MusicModelConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import local_model
from sogni_intelligence.media.music.render import finish
from sogni_intelligence.media.transformers_models import import_transformers

BACKEND = "transformers-musicgen"


@dataclass
class _Generator:
    torch: Any
    model: Any
    tokenizer: Any
    device: str

    @property
    def frame_rate(self) -> float:
        return float(self.model.config.audio_encoder.frame_rate)

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def longest_s(self) -> float:
        """The longest piece the decoder's positions allow (its codebooks are delayed)."""
        decoder = self.model.config.decoder
        return (decoder.max_position_embeddings - decoder.num_codebooks - 1) / self.frame_rate


def _load(torch: Any, path: Path, device: str, dtype: Any) -> _Generator:
    transformers = import_transformers("the music model")
    model = transformers.MusicgenForConditionalGeneration.from_pretrained(
        str(path), local_files_only=True, dtype=dtype
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return _Generator(torch, model.to(device).eval(), tokenizer, device)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Channels x samples floats in [-1, 1] as a 16-bit PCM WAV file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.T.tobytes())


class MusicModel:
    """The configured music model, loaded on first use and shared by the process."""

    backend = BACKEND

    def __init__(self, config: MusicModelConfig) -> None:
        self._local = local_model("music model", config, _load)
        self.name = self._local.path.name
        self.aliases = frozenset(config.aliases)
        self.guidance = config.guidance

    async def render(
        self, prompt: str, duration_s: float, seed: int, fmt: str, workdir: Path, name: str
    ) -> Path:
        """A `fmt` file of exactly `duration_s` seconds in `workdir`."""
        raw_path = workdir / f"{name}.raw.wav"

        def generate(generator: _Generator) -> None:
            if duration_s > generator.longest_s:
                raise ToolError(
                    "PARAMETER_INVALID",
                    f"duration: the {self.name} model makes at most "
                    f"{math.floor(generator.longest_s)} seconds",
                )
            torch = generator.torch
            inputs = generator.tokenizer([prompt], return_tensors="pt", padding=True)
            inputs = {key: value.to(generator.device) for key, value in inputs.items()}
            decoder = generator.model.config.decoder
            tokens = math.ceil(duration_s * generator.frame_rate) + decoder.num_codebooks
            torch.manual_seed(seed)
            with torch.inference_mode():
                audio = generator.model.generate(
                    **inputs,
                    do_sample=True,
                    guidance_scale=self.guidance,
                    max_new_tokens=tokens,
                )
            _write_wav(raw_path, audio[0].float().cpu().numpy(), generator.sampling_rate)

        await self._local.run(generate)
        out_path = workdir / f"{name}.{fmt}"
        await finish(raw_path, duration_s, fmt, out_path)
        raw_path.unlink(missing_ok=True)
        return out_path
