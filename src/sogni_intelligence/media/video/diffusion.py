"""Video from a local LTX-Video diffusers pipeline, for operators with one.

One `LTXConditionPipeline` serves every use: without pictures it is text-to-video; pictures
pinned to moments of the clip (a photo at the start, an end image, a video's last frame) make
it image-to-video. With a source video it redraws that video (video-to-video, as SDEdit does
for images): the source's frames are encoded, noised to a point part-way down the schedule and
denoised from there under the prompt, so only that share of the steps runs and the result keeps
the source's motion and composition. LTX renders k * 8 + 1 frames at sides that are multiples
of 32 (its VAE's compression), so the call's length and size are mapped onto those, and ffmpeg
then scales, crops and trims the frames to exactly what was asked and adds the soundtrack.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from sogni_intelligence.config import VideoModelConfig
from sogni_intelligence.errors import ToolError
from sogni_intelligence.media.local_model import EXTRA_HINT, Stopped, local_model
from sogni_intelligence.media.progress import Progress
from sogni_intelligence.media.store import MadeFacts
from sogni_intelligence.media.video.encoding import encode_graph, frame_rate_text, seconds
from sogni_intelligence.media.video.motion import Soundtrack, soundtrack_filter
from sogni_intelligence.media.video.probe import cover, decode_frames

BACKEND = "diffusers-ltx-video"
SIZE_STEP = 32  # the LTX pipelines refuse other sides


@dataclass(frozen=True)
class Pinned:
    """A picture the clip must show at `at_s` seconds (0 is the first frame)."""

    image: Path
    at_s: float


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    width: int
    height: int
    duration_s: float
    seed: int
    negative_prompt: str | None = None
    pictures: tuple[Pinned, ...] = ()
    #: A video to redraw: re-noised by `strength` (0-1, the share of the steps that run), so a
    #: lower strength keeps more of it.
    source_video: Path | None = None
    strength: float = 1.0


@dataclass(frozen=True)
class Rendered:
    """A finished clip: its facts as encoded, what the model rendered, and what fell short."""

    facts: MadeFacts
    frames: int
    size: tuple[int, int]
    steps: int  # the denoising steps that ran
    warnings: list[str]


def frame_count(duration_s: float, fps: int, temporal: int, max_frames: int) -> tuple[int, bool]:
    """The fewest frames of the form k * temporal + 1 that last `duration_s` at `fps`, at most
    `max_frames`; and whether that cap shortened the clip."""
    wanted = max(1, round(duration_s * fps))
    count = math.ceil((wanted - 1) / temporal) * temporal + 1
    cap = (max_frames - 1) // temporal * temporal + 1
    return min(count, cap), count > cap


def render_size(width: int, height: int, step: int) -> tuple[int, int]:
    """The nearest sides the model takes: multiples of `step` (halves round up), at least one."""

    def side(value: int) -> int:
        return max(step, math.floor(value / step + 0.5) * step)

    return side(width), side(height)


def denoise_steps(steps: int, strength: float) -> tuple[int, float]:
    """How many of `steps` redraw a source video at `strength`, and the pipeline's
    denoise_strength that runs exactly those (it keeps int(steps * denoise_strength)). At least
    one step runs and never all: from the top of the schedule the pipeline ignores the source."""
    if steps < 2:
        raise ToolError(
            "MODEL_UNAVAILABLE",
            "the video model is set to 1 denoising step; redrawing a video needs at least 2",
        )
    run = min(steps - 1, max(1, int(steps * strength)))
    return run, (run + 0.5) / steps


@dataclass(frozen=True)
class _Plan:
    """What one render makes: frames (k * temporal + 1), whether max_frames cut them, and the
    sides the model takes."""

    count: int
    capped: bool
    width: int
    height: int


@dataclass
class _Pipeline:
    torch: Any
    pipe: Any
    condition: Any  # diffusers' LTXVideoCondition
    device: str


def _load(torch: Any, path: Path, device: str, dtype: Any) -> _Pipeline:
    try:
        from diffusers import LTXConditionPipeline
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    except ImportError as exc:
        raise ToolError(
            "MODEL_UNAVAILABLE", f"the video model needs diffusers ({EXTRA_HINT})"
        ) from exc
    index = path / "model_index.json"
    if not index.is_file():
        raise ToolError(
            "MODEL_UNAVAILABLE",
            f"the video model folder {path} is not a diffusers pipeline (no model_index.json)",
        )
    kind = json.loads(index.read_text()).get("_class_name", "")
    if not kind.startswith("LTX"):
        raise ToolError(
            "MODEL_UNAVAILABLE",
            f"the video model folder {path} holds a {kind or 'unnamed'} pipeline, not LTX-Video",
        )
    pipe = LTXConditionPipeline.from_pretrained(str(path), local_files_only=True, dtype=dtype)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return _Pipeline(torch, pipe, LTXVideoCondition, device)


def _picture(path: Path, width: int, height: int) -> Image.Image:
    with Image.open(path) as image:
        return cover(ImageOps.exif_transpose(image), width, height)


def _source_latents(loaded: _Pipeline, raw: Path, plan: _Plan) -> Any:
    """The decoded source frames (raw RGB24) as the pipeline's normalized latents, the form in
    which it noises given latents and denormalizes them again before decoding."""
    torch, vae = loaded.torch, loaded.pipe.vae
    pixels = torch.frombuffer(bytearray(raw.read_bytes()), dtype=torch.uint8)
    pixels = pixels.reshape(1, plan.count, plan.height, plan.width, 3).permute(0, 4, 1, 2, 3)
    video = pixels.to(loaded.device, vae.dtype) / 127.5 - 1  # batch x rgb x frames x rows x cols
    latents = vae.encode(video).latent_dist.mode()
    mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(latents)
    std = vae.latents_std.view(1, -1, 1, 1, 1).to(latents)
    return (latents - mean) * vae.config.scaling_factor / std


class VideoModel:
    """The configured video model, loaded on first use and shared by the process."""

    backend = BACKEND

    def __init__(self, config: VideoModelConfig) -> None:
        self._local = local_model("video model", config, _load)
        self.name = self._local.path.name
        self.aliases = frozenset(config.aliases)
        self.steps = config.steps
        self.guidance = config.guidance
        self.fps = config.fps
        self.max_frames = config.max_frames
        self.v2v_strength = config.v2v_strength

    def _plan(self, loaded: _Pipeline, request: VideoRequest) -> _Plan:
        pipe = loaded.pipe
        step = math.lcm(
            SIZE_STEP, pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        )
        count, capped = frame_count(
            request.duration_s, self.fps, pipe.vae_temporal_compression_ratio, self.max_frames
        )
        return _Plan(count, capped, *render_size(request.width, request.height, step))

    async def render(
        self, request: VideoRequest, out: Path, track: Soundtrack, progress: Progress
    ) -> Rendered:
        """An MP4 of `request` at its exact size in `out`; progress goes from 0 to 1 over the
        denoising steps that run. Cancelling the caller stops the render at its next step."""
        loop = asyncio.get_running_loop()
        raw = out.with_suffix(".rgb")
        source = out.with_name(f"{out.stem}-source.rgb")
        plan = await self._local.run(lambda loaded: self._plan(loaded, request))
        width, height, count = plan.width, plan.height, plan.count
        redraw = None
        if request.source_video is not None:
            redraw = denoise_steps(self.steps, request.strength)

        def report(fraction: float, message: str) -> None:
            # Steps end in the worker thread; progress belongs to the event loop.
            loop.call_soon_threadsafe(progress, fraction, message)

        def generate(loaded: _Pipeline, stop: threading.Event) -> int:
            pipe = loaded.pipe
            temporal = pipe.vae_temporal_compression_ratio
            conditions = {}
            for pinned in request.pictures:
                index = min(count - 1, round(pinned.at_s * self.fps / temporal) * temporal)
                conditions[index] = loaded.condition(
                    image=_picture(pinned.image, width, height), frame_index=index
                )

            def on_step(pipe: Any, index: int, _timestep: Any, _tensors: Any) -> dict[str, Any]:
                if stop.is_set():
                    raise Stopped
                # The schedule as it runs: a redraw starts part-way down it.
                total = pipe.num_timesteps
                report((index + 1) / total, f"{self.name}: denoising step {index + 1} of {total}")
                return {}

            start = f"{self.name}: {count} frames at {width}x{height}"
            extra: dict[str, Any] = {}
            with loaded.torch.inference_mode():
                if redraw is not None:
                    start += f", redrawing the source video in {redraw[0]} of {self.steps} steps"
                    latents = _source_latents(loaded, source, plan)
                    extra = {"latents": latents, "denoise_strength": redraw[1]}
                report(0.0, start)
                generator = loaded.torch.Generator(device=loaded.device).manual_seed(request.seed)
                frames = pipe(
                    conditions=list(conditions.values()) or None,
                    prompt=request.prompt,
                    negative_prompt=request.negative_prompt,
                    width=width,
                    height=height,
                    num_frames=count,
                    frame_rate=self.fps,
                    num_inference_steps=self.steps,
                    guidance_scale=self.guidance,
                    generator=generator,
                    output_type="pt",
                    callback_on_step_end=on_step,
                    **extra,
                ).frames[0]
                # Frames x channels x rows x columns in [0, 1]: made bytes on the device, so the
                # host holds a quarter of what float frames of a long clip would take.
                pixels = (frames.clamp(0, 1) * 255).round().to(loaded.torch.uint8)
                pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy().tofile(raw)
            return pipe.num_timesteps

        try:
            if request.source_video is not None:
                await decode_frames(
                    request.source_video, source, width, height, Fraction(self.fps), count
                )
            steps = await self._local.run_stoppable(generate)
            warnings = []
            if plan.capped:
                warnings.append(
                    f"the {self.name} video model makes at most {count} frames at {self.fps} fps: "
                    f"the clip lasts {seconds(count, Fraction(self.fps)):.2f}s"
                )
            kept = min(count, max(1, round(request.duration_s * self.fps)))
            length = await self._encode(raw, (width, height), kept, request, out, track)
        finally:
            raw.unlink(missing_ok=True)
            source.unlink(missing_ok=True)
        facts = MadeFacts(request.width, request.height, round(length, 6), float(self.fps))
        return Rendered(facts, count, (width, height), steps, warnings)

    async def _encode(
        self,
        raw: Path,
        size: tuple[int, int],
        kept: int,
        request: VideoRequest,
        out: Path,
        track: Soundtrack,
    ) -> float:
        """The first `kept` raw RGB frames, scaled to cover the requested size and cropped to
        it, with the soundtrack, as the project's standard MP4. Returns the length."""
        fps = Fraction(self.fps)
        width, height = request.width, request.height
        length = seconds(kept, fps)
        chain = (
            f"[0:v]scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos,"
            f"crop={width}:{height},setsar=1,fps={frame_rate_text(fps)},format=yuv420p,"
            f"trim=end_frame={kept},setpts=PTS-STARTPTS[v]"
        )
        extra, audio = soundtrack_filter(track, 1, length)
        source = [
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{size[0]}x{size[1]}"),
            *("-framerate", frame_rate_text(fps), "-i", str(raw)),
        ]
        await encode_graph([*source, *extra], f"{chain};{audio}", out, length, width, height)
        return length
