"""Benchmark of the in-process model backends: each hosted tool against the bare library call.

The tiny random-initialised models of the integration tests are built into a temporary folder
and loaded from there, as an operator's model folders would be. For every backend the same work
runs twice, on the same loaded model (so the same weights, device and dtype):

* ours: the hosted tool through the real tool path, `execute(CATALOG[tool], args, ctx)` with
  the backend configured from `Settings` (argument checks, the model's worker thread, decoding
  and encoding, storing the asset);
* bare: the library call alone with the same settings (the diffusers pipeline with the same
  steps, size, guidance and seed; the LTX pipeline with the same frames, size and steps,
  frames returned as a tensor; MusicGen `generate` with the same token count; the image
  processor and forward pass of the segmentation model, its class probabilities upsampled to
  the image, and the processor and forward pass of the content classifier).

Each side runs once uncounted first (the first tool call also loads the model), then the two
alternate. The table shows both medians, their ratio ours/bare (what the tool path adds) and a
throughput figure. Only the ratio carries over between machines; the tiny models make the
model's own work small, so the ratio is an upper bound of what the tool path adds to real ones.

    .venv/bin/python benchmarks/bench_local_models.py [--device cpu|cuda:0]
        [--dtype float32|float16|bfloat16] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tiny-model builders live in the test suite
# The libraries' notes about the random tiny models and their progress bars, not the numbers.
for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
    os.environ.setdefault(name, "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from tests.integration.tools.conftest import upload_image  # noqa: E402
from tests.integration.tools.test_content_filter import build_tiny_classifier  # noqa: E402
from tests.integration.tools.test_diffusers_backend import build_tiny_pipeline  # noqa: E402
from tests.integration.tools.test_music_model import build_tiny_musicgen  # noqa: E402
from tests.integration.tools.test_segmentation_model import build_tiny_segformer  # noqa: E402
from tests.integration.tools.test_video_model import build_tiny_ltx  # noqa: E402

from sogni_intelligence.config import ImageBackendConfig, Settings  # noqa: E402
from sogni_intelligence.media.music.neural import MusicModel  # noqa: E402
from sogni_intelligence.media.remote_image import build_image_backends  # noqa: E402
from sogni_intelligence.media.segmentation import SegmentationModel  # noqa: E402
from sogni_intelligence.media.signing import UrlSigner  # noqa: E402
from sogni_intelligence.media.store import AssetRecord, AssetStore  # noqa: E402
from sogni_intelligence.media.video.diffusion import VideoModel  # noqa: E402
from sogni_intelligence.store.db import Database  # noqa: E402
from sogni_intelligence.tools.base import ToolContext, execute  # noqa: E402
from sogni_intelligence.tools.catalog import CATALOG  # noqa: E402
from sogni_intelligence.tools.content_filter import ContentFilter  # noqa: E402
from sogni_intelligence.tools.media_context import MediaContext  # noqa: E402

IMAGE = {"alias": "tiny-sd", "steps": 4, "guidance": 7.5, "size": 256}
VIDEO = {"alias": "ltx25", "steps": 3, "guidance": 3.0, "fps": 8, "seconds": 2, "size": (128, 96)}
MUSIC = {"alias": "musicgen-small", "guidance": 3.0, "seconds": 10}  # the shortest piece
PICTURE = (512, 384)  # the upload the segmentation model and the classifier look at


async def _context(root: Path) -> tuple[ToolContext, Database]:
    db = Database(f"sqlite:///{root / 'bench.sqlite'}")
    await db.create_all()
    store = AssetStore(db, root / "media", UrlSigner(b"b" * 32, "http://bench", 3600))
    return ToolContext(owner="bench", media=MediaContext(), store=store), db


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


async def _measure(
    ours: Callable[[int], Awaitable[Any]],
    bare: Callable[[int], Any],
    runs: int,
    device: str,
) -> tuple[list[float], list[float]]:
    """One uncounted call of each side, then `runs` of each, alternating which goes first.
    The bare call runs in a worker thread, as the tool's model work does."""

    async def timed(call: Callable[[], Awaitable[Any]]) -> float:
        _synchronize(device)
        started = time.perf_counter()
        await call()
        _synchronize(device)
        return time.perf_counter() - started

    ours_s: list[float] = []
    bare_s: list[float] = []
    for round_ in range(runs + 1):
        seed = round_ + 1
        sides = [
            (ours_s, lambda seed=seed: ours(seed)),
            (bare_s, lambda seed=seed: asyncio.to_thread(bare, seed)),
        ]
        if round_ % 2:
            sides.reverse()
        for samples, call in sides:
            elapsed = await timed(call)
            if round_:
                samples.append(elapsed)
    return ours_s, bare_s


async def _tool(ctx: ToolContext, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await execute(CATALOG[name], arguments, ctx)
    if not result.get("ok"):
        raise SystemExit(f"{name} failed: {result}")
    return result


async def bench_image(ctx: ToolContext, folder: Path, args: argparse.Namespace) -> dict:
    config = ImageBackendConfig(
        name="local-sd",
        kind="diffusers",
        model_path=str(folder),
        aliases=[IMAGE["alias"]],
        steps=IMAGE["steps"],
        guidance=IMAGE["guidance"],
        device=args.device,
        dtype=args.dtype,
    )
    ctx.services.image_backends = build_image_backends([config])
    backend = ctx.services.image_backends["local-sd"]
    prompt, side = "a red fox in snow", IMAGE["size"]

    async def ours(seed: int) -> None:
        arguments = {"prompt": prompt, "model": IMAGE["alias"], "seed": seed}
        await _tool(ctx, "generate_image", arguments | {"width": side, "height": side})

    await ours(0)  # loads the pipeline
    pipe = (await backend._local.run(lambda loaded: loaded)).text2image

    def bare(seed: int) -> None:
        pipe(
            prompt=prompt,
            num_inference_steps=IMAGE["steps"],
            guidance_scale=IMAGE["guidance"],
            generator=torch.Generator("cpu").manual_seed(seed),
            width=side,
            height=side,
        ).images[0]

    ours_s, bare_s = await _measure(ours, bare, args.runs, args.device)
    return _row("diffusers (tiny SD)", "generate_image", ours_s, bare_s, IMAGE["steps"], "steps/s")


async def bench_video(ctx: ToolContext, settings: Settings, args: argparse.Namespace) -> dict:
    assert settings.video_model is not None
    model = ctx.services.video = VideoModel(settings.video_model)
    prompt, (width, height) = "a cat walks on the beach", VIDEO["size"]
    frames = VIDEO["seconds"] * VIDEO["fps"] + 1  # LTX renders 8k + 1 frames

    async def ours(seed: int) -> None:
        arguments = {"prompt": prompt, "videoModel": VIDEO["alias"], "seed": seed}
        arguments |= {"duration": VIDEO["seconds"], "width": width, "height": height}
        await _tool(ctx, "generate_video", arguments)

    await ours(0)
    loaded = await model._local.run(lambda loaded: loaded)

    def bare(seed: int) -> None:
        with torch.inference_mode():
            loaded.pipe(
                prompt=prompt,
                width=width,
                height=height,
                num_frames=frames,
                frame_rate=VIDEO["fps"],
                num_inference_steps=VIDEO["steps"],
                guidance_scale=VIDEO["guidance"],
                generator=torch.Generator(device=args.device).manual_seed(seed),
                output_type="pt",
            ).frames[0].cpu()

    ours_s, bare_s = await _measure(ours, bare, args.runs, args.device)
    return _row("LTX-Video (tiny)", "generate_video", ours_s, bare_s, frames, "frames/s")


async def bench_music(ctx: ToolContext, settings: Settings, args: argparse.Namespace) -> dict:
    assert settings.music_model is not None
    model = ctx.services.music = MusicModel(settings.music_model)
    prompt, seconds = "calm piano", MUSIC["seconds"]

    async def ours(seed: int) -> None:
        arguments = {"prompt": prompt, "duration": seconds, "model": MUSIC["alias"]}
        await _tool(ctx, "generate_music", arguments | {"outputFormat": "wav", "seed": seed})

    await ours(0)
    loaded = await model._local.run(lambda loaded: loaded)
    tokens = math.ceil(seconds * loaded.frame_rate) + loaded.model.config.decoder.num_codebooks

    def bare(seed: int) -> None:
        inputs = loaded.tokenizer([prompt], return_tensors="pt", padding=True)
        inputs = {key: value.to(args.device) for key, value in inputs.items()}
        torch.manual_seed(seed)
        with torch.inference_mode():
            audio = loaded.model.generate(
                **inputs, do_sample=True, guidance_scale=MUSIC["guidance"], max_new_tokens=tokens
            )
        audio.cpu()

    ours_s, bare_s = await _measure(ours, bare, args.runs, args.device)
    return _row("MusicGen (tiny)", "generate_music", ours_s, bare_s, seconds, "audio s/s")


async def bench_segmentation(
    ctx: ToolContext, settings: Settings, picture: Image.Image, args: argparse.Namespace
) -> dict:
    assert settings.segmentation_model is not None
    model = ctx.services.segmentation = SegmentationModel(settings.segmentation_model)

    async def ours(seed: int) -> None:
        await _tool(ctx, "remove_background", {})

    await ours(0)
    loaded = await model._local.run(lambda loaded: loaded)
    dtype = getattr(torch, args.dtype)

    def bare(seed: int) -> None:
        inputs = loaded.processor(images=picture, return_tensors="pt")
        pixels = inputs["pixel_values"].to(args.device, dtype)
        with torch.inference_mode():
            logits = loaded.model(pixel_values=pixels).logits.float()
            logits = torch.nn.functional.interpolate(
                logits, size=(picture.height, picture.width), mode="bilinear", align_corners=False
            )
            logits.softmax(dim=1)[0].cpu().numpy()  # the class probabilities of each pixel

    ours_s, bare_s = await _measure(ours, bare, args.runs, args.device)
    return _row("SegFormer (tiny)", "remove_background", ours_s, bare_s, 1, "images/s")


async def bench_classifier(
    ctx: ToolContext,
    settings: Settings,
    record: AssetRecord,
    picture: Image.Image,
    args: argparse.Namespace,
) -> dict:
    screen = ContentFilter.from_settings(settings)
    assert screen.classifier is not None

    async def ours(seed: int) -> None:
        # What every image-making tool does with its outputs while the filter is on.
        await screen.check_outputs("generate_image", [record], ctx.store)

    await ours(0)
    loaded = await screen.classifier._model.run(lambda loaded: loaded)
    dtype = getattr(torch, args.dtype)

    def bare(seed: int) -> None:
        inputs = loaded.processor(images=picture, return_tensors="pt")
        pixels = inputs["pixel_values"].to(args.device, dtype)
        with torch.inference_mode():
            loaded.model(pixel_values=pixels).logits.float().softmax(dim=-1).cpu()

    ours_s, bare_s = await _measure(ours, bare, args.runs, args.device)
    return _row("ViT classifier (tiny)", "content filter", ours_s, bare_s, 1, "images/s")


def _row(
    backend: str, tool: str, ours_s: list[float], bare_s: list[float], work: float, unit: str
) -> dict[str, Any]:
    ours, bare = statistics.median(ours_s), statistics.median(bare_s)
    return {
        "backend": backend,
        "tool": tool,
        "ours_ms": ours * 1000,
        "bare_ms": bare * 1000,
        "ratio": ours / bare,
        "added_ms": (ours - bare) * 1000,
        "unit": unit,
        "ours_throughput": work / ours,
        "bare_throughput": work / bare,
        "ours_samples_ms": [s * 1000 for s in ours_s],
        "bare_samples_ms": [s * 1000 for s in bare_s],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-local-models-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        folders = {
            "image": build_tiny_pipeline(root / "sd"),
            "video": build_tiny_ltx(root),
            "music": build_tiny_musicgen(root),
            "segmentation": build_tiny_segformer(root, favoured=2),
            "classifier": build_tiny_classifier(root, favoured=0),  # passes: "calm"
        }
        built_s = time.perf_counter() - started
        model = {"device": args.device, "dtype": args.dtype}
        settings = Settings(
            model_device=args.device,
            video_model={
                "path": str(folders["video"]),
                "aliases": [VIDEO["alias"]],
                "steps": VIDEO["steps"],
                "guidance": VIDEO["guidance"],
                "fps": VIDEO["fps"],
                **model,
            },
            music_model={
                "path": str(folders["music"]),
                "aliases": [MUSIC["alias"]],
                "guidance": MUSIC["guidance"],
                **model,
            },
            segmentation_model={"path": str(folders["segmentation"]), **model},
            content_filter_model={
                "path": str(folders["classifier"]),
                "flagged_labels": ["unsafe"],
                **model,
            },
        )
        ctx, db = await _context(root)
        try:
            record = await upload_image(ctx, PICTURE, "orange")
            with Image.open(await ctx.store.local_path(record)) as opened:
                picture = opened.convert("RGB")
            rows = [
                await bench_image(ctx, folders["image"], args),
                await bench_video(ctx, settings, args),
                await bench_music(ctx, settings, args),
                await bench_segmentation(ctx, settings, picture, args),
                await bench_classifier(ctx, settings, record, picture, args),
            ]
        finally:
            await db.close()
    return {
        "device": args.device,
        "dtype": args.dtype,
        "runs": args.runs,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "build_s": built_s,
        "total_s": time.perf_counter() - started,
        "results": rows,
    }


def _print_table(report: dict[str, Any]) -> None:
    print(
        f"device {report['device']}, {report['dtype']}, torch {report['torch']}, "
        f"{report['threads']} threads, median of {report['runs']} runs "
        f"(models built in {report['build_s']:.1f} s, {report['total_s']:.0f} s in all)"
    )
    header = (
        "backend",
        "tool",
        "ours ms",
        "bare ms",
        "ours/bare",
        "added ms",
        "throughput ours / bare",
    )
    lines = [header]
    for row in report["results"]:
        lines.append(
            (
                row["backend"],
                row["tool"],
                f"{row['ours_ms']:.1f}",
                f"{row['bare_ms']:.1f}",
                f"{row['ratio']:.2f}x",
                f"{row['added_ms']:+.1f}",
                f"{row['ours_throughput']:.2f} / {row['bare_throughput']:.2f} {row['unit']}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda:0, ...")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--runs", type=int, default=3, help="counted calls of each side")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: 1 on cpu, as the tests use; torch's own on a GPU)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON with every sample")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch ({torch.__version__}) has no CUDA")
    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    threads = args.threads or (1 if args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    report = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)


if __name__ == "__main__":
    main()
