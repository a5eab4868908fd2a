"""Benchmark of the CPU media backends, each against a named baseline in the same run.

* image: the procedural renderer at 1024x1024 through `generate_image` (render, encode,
  hash, store) against the bare render call: how much the tool path adds;
* video: a 5 s 1280x720 `animate_photo` against a direct ffmpeg run of the very same command
  line (captured from the tool's own call): the ratio is our overhead around ffmpeg;
* music: the real-time factor (seconds of work per second of audio; below 1 is faster than
  real time) through the tool;
* speech: the real-time factor of the neural English voice (hibari-tts) against espeak-ng on
  the same text through the same path (synthesis, then the WAV encode), and their ratio.

    .venv/bin/python benchmarks/bench_media.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

from sogni_intelligence.media import speech
from sogni_intelligence.media.ffmpeg import ffmpeg_exe
from sogni_intelligence.media.image import render_procedural
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.media.video import encoding as video_encoding
from sogni_intelligence.store.db import Database
from sogni_intelligence.tools.base import ToolContext, execute
from sogni_intelligence.tools.catalog import CATALOG
from sogni_intelligence.tools.media_context import MediaContext


def _median_time(samples: list[float]) -> float:
    return statistics.median(samples)


async def _context(root: Path) -> tuple[ToolContext, Database]:
    db = Database(f"sqlite:///{root / 'bench.sqlite'}")
    await db.create_all()
    store = AssetStore(db, root / "media", UrlSigner(b"b" * 32, "http://bench", 3600))
    return ToolContext(owner="bench", media=MediaContext(), store=store), db


async def bench_image(ctx: ToolContext, runs: int) -> dict[str, Any]:
    """Bare render and tool call in turns, per seed; the first round is uncounted: the first
    call of each side pays for imports and first-touch memory (a third more for the render)."""
    bare, tool = [], []
    for seed in range(runs + 1):
        started = time.perf_counter()
        render_procedural("a lighthouse on a cliff at sunset", seed, 1024, 1024)
        rendered = time.perf_counter() - started
        started = time.perf_counter()
        result = await execute(
            CATALOG["generate_image"],
            {
                "prompt": "a lighthouse on a cliff at sunset",
                "seed": seed,
                "width": 1024,
                "height": 1024,
                "outputFormat": "jpg",
            },
            ctx,
        )
        called = time.perf_counter() - started
        assert result["ok"], result
        if seed:
            bare.append(rendered)
            tool.append(called)
    return {
        "render_ms": _median_time(bare) * 1000,
        "tool_ms": _median_time(tool) * 1000,
        "ratio": _median_time(tool) / _median_time(bare),
    }


async def bench_video(ctx: ToolContext, runs: int) -> dict[str, Any]:
    photo = io.BytesIO()
    render_procedural("mountain lake", 1, 1920, 1080).save(photo, "PNG")
    ctx.media.add_upload(await ctx.store.put_bytes(ctx.owner, photo.getvalue()))
    direct_runs: list[float] = []
    original = video_encoding.ffmpeg

    async def also_direct(*args: str, timeout_s: float = 600) -> None:
        """Run the tool's ffmpeg call, then the same command line again on its own (while the
        tool's inputs still exist), writing elsewhere; the tool's total minus that second run
        is what our path costs around one ffmpeg run."""
        await original(*args, timeout_s=timeout_s)
        scratch = Path(tempfile.mkdtemp())
        try:
            argv = [
                ffmpeg_exe(),
                "-hide_banner",
                "-nostdin",
                "-y",
                *args[:-1],
                str(scratch / "d.mp4"),
            ]
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            direct_runs.append(time.perf_counter() - started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    video_encoding.ffmpeg = also_direct  # type: ignore[assignment]
    ours, direct = [], []
    try:
        for _ in range(runs):
            direct_runs.clear()
            started = time.perf_counter()
            result = await execute(
                CATALOG["animate_photo"],
                {
                    "prompt": "slow push in",
                    "sourceImageIndex": -1,
                    "duration": 5,
                    "width": 1280,
                    "height": 720,
                },
                ctx,
            )
            total = time.perf_counter() - started
            assert result["ok"], result
            assert len(direct_runs) == 1, "animate_photo should be one ffmpeg run"
            ours.append(total - direct_runs[0])
            direct.append(direct_runs[0])
    finally:
        video_encoding.ffmpeg = original  # type: ignore[assignment]
    return {
        "ours_s": _median_time(ours),
        "direct_ffmpeg_s": _median_time(direct),
        "ratio": _median_time(ours) / _median_time(direct),
    }


async def bench_audio(
    ctx: ToolContext, tool: str, arguments: dict[str, Any], runs: int
) -> dict[str, Any]:
    factors = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await execute(CATALOG[tool], arguments, ctx)
        elapsed = time.perf_counter() - started
        assert result["ok"], result
        factors.append(elapsed / result["output_assets"][0]["duration_seconds"])
    return {"real_time_factor": _median_time(factors)}


SPEECH_TEXT = (
    "The quick brown fox jumps over the lazy dog. A calm voice reads the weather for the "
    "coast: light rain in the morning, clearing by noon, and a cool breeze after dark."
)


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as handle:
        return handle.getnframes() / handle.getframerate()


async def bench_speech(root: Path, runs: int) -> dict[str, Any]:
    """Both engines on one English text; the first round loads the neural model, uncounted."""
    neural = speech.settings_for(SPEECH_TEXT, None, "english", 0.9, seed=1)
    engines = {speech.NEURAL: neural, speech.ESPEAK: replace(neural, engine=speech.ESPEAK)}
    factors: dict[str, list[float]] = {engine: [] for engine in engines}
    for round_ in range(runs + 1):
        for engine, settings in engines.items():
            started = time.perf_counter()
            spoken = await speech.synthesize(
                SPEECH_TEXT, settings, "wav", root, name=f"speech-{round_}"
            )
            elapsed = time.perf_counter() - started
            assert spoken.engine == engine, spoken.warnings
            if round_:
                factors[engine].append(elapsed / _wav_seconds(spoken.path))
            spoken.path.unlink()
    hibari, espeak = (_median_time(factors[e]) for e in (speech.NEURAL, speech.ESPEAK))
    return {
        "words": len(SPEECH_TEXT.split()),
        "hibari_real_time_factor": hibari,
        "espeak_real_time_factor": espeak,
        "ratio": hibari / espeak,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-media-"))
    ctx, db = await _context(root)
    try:
        return {
            "image_1024": await bench_image(ctx, args.runs),
            "animate_photo_5s_720p": await bench_video(ctx, args.runs),
            "music_30s": await bench_audio(
                ctx,
                "generate_music",
                {
                    "prompt": "calm piano with strings",
                    "duration": 30,
                    "seed": 1,
                    "outputFormat": "wav",
                },
                args.runs,
            ),
            "speech": await bench_speech(root, args.runs),
        }
    finally:
        await db.close()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    image, clip = results["image_1024"], results["animate_photo_5s_720p"]
    print(
        f"image 1024x1024: render {image['render_ms']:.0f} ms, "
        f"generate_image {image['tool_ms']:.0f} ms (ratio {image['ratio']:.2f} vs bare render)"
    )
    print(
        f"animate_photo 5 s 720p: ours {clip['ours_s']:.2f} s, same ffmpeg command alone "
        f"{clip['direct_ffmpeg_s']:.2f} s (ratio {clip['ratio']:.2f})"
    )
    print(f"music 30 s: real-time factor {results['music_30s']['real_time_factor']:.3f}")
    spoken = results["speech"]
    print(
        f"speech, the same {spoken['words']} words: hibari-tts real-time factor "
        f"{spoken['hibari_real_time_factor']:.4f}, espeak-ng "
        f"{spoken['espeak_real_time_factor']:.4f} (ratio hibari/espeak {spoken['ratio']:.2f})"
    )


if __name__ == "__main__":
    main()
