"""Sentences from measured statistics, saying plainly that they come from pixels, not from
recognising what the picture shows.
"""

from __future__ import annotations

from typing import Any

# --------------------------------------------------------------------------------------------
# Words.

COMPUTED_NOTE = (
    "This is a computed description from measured pixel statistics; no vision model looked at "
    "the {what}, so it cannot say what {shows}."
)
NO_OCR = "Text recognition (OCR) is not available on this server, so no text was read."
NO_OBJECTS = "Object recognition is not available on this server, so no objects were identified."


def _palette_words(colours: list[dict[str, Any]], limit: int = 3) -> str:
    return ", ".join(
        f"{c['name']} ({c['hex']}, {round(100 * c['share'])}%)" for c in colours[:limit]
    )


def describe_image(stats: dict[str, Any], analysis_type: str, detailed: bool) -> str:
    parts = [COMPUTED_NOTE.format(what="image", shows="it shows")]
    if analysis_type in ("ocr", "document"):
        parts.append(NO_OCR)
    elif analysis_type == "objects":
        parts.append(NO_OBJECTS)
    parts.append(
        f"The image is {stats['width']}×{stats['height']} pixels ({stats['orientation']}, "
        f"{stats['aspect_ratio']}). Dominant colours: "
        f"{_palette_words(stats['palette'], 5 if detailed else 3)}."
    )
    parts.append(
        f"It is {stats['brightness_level']} (mean brightness {stats['brightness']:.2f}) with "
        f"{stats['contrast_level']} contrast, looks {stats['sharpness_level']} and is "
        f"{stats['colourfulness']}."
    )
    if detailed:
        parts.append(
            f"Measured: contrast {stats['contrast']:.3f}, Laplacian variance "
            f"{stats['sharpness']}, mean saturation {stats['saturation']:.2f}, "
            f"{stats['megapixels']} megapixels."
        )
    if "transparent_fraction" in stats:
        parts.append(f"{round(100 * stats['transparent_fraction'])}% of it is transparent.")
    return " ".join(parts)


def describe_comparison(result: dict[str, Any]) -> str:
    shift = result["dominant_colour_shift"]
    sizes = result["sizes"]
    parts = [COMPUTED_NOTE.format(what="images", shows="they show")]
    size_words = (
        "Both images are the same size"
        if result["same_size"]
        else f"The first is {sizes['first'][0]}×{sizes['first'][1]} and the second "
        f"{sizes['second'][0]}×{sizes['second'][1]}"
    )
    parts.append(
        f"{size_words}. They are {round(100 * result['similarity'])}% similar pixel for pixel "
        f"(mean absolute difference {result['mean_absolute_difference']:.3f}); "
        f"{round(100 * result['changed_pixel_fraction'])}% of the pixels changed noticeably."
    )
    if shift["from"] != shift["to"]:
        parts.append(f"The dominant colour shifts from {shift['from']} to {shift['to']}.")
    else:
        parts.append(f"The dominant colour stays {shift['from']}.")
    if result["most_changed_regions"]:
        parts.append("Most change is in the " + ", ".join(result["most_changed_regions"]) + ".")
    bright = result["brightness"]
    if abs(bright["first"] - bright["second"]) > 0.05:
        darker = "darker" if bright["second"] < bright["first"] else "brighter"
        parts.append(f"The second image is {darker} overall.")
    return " ".join(parts)


def describe_video(stats: dict[str, Any], analysis_type: str, detailed: bool) -> str:
    parts = [COMPUTED_NOTE.format(what="video", shows="it shows")]
    if analysis_type == "ocr":
        parts.append(NO_OCR)
    elif analysis_type == "action":
        parts.append(
            "Actions cannot be recognised without a vision model; the motion level of each "
            "scene is measured instead."
        )
    fps = f", {stats['fps']:.3g} fps" if stats.get("fps") else ""
    audio = "with an audio track" if stats.get("has_audio") else "without audio"
    parts.append(
        f"The video lasts {stats['duration_seconds']:.1f} s at {stats['width']}×"
        f"{stats['height']}{fps}, {audio}."
    )
    scenes = stats["scenes"]
    count = len(scenes)
    cut_word = "scene" if count == 1 else "scenes"
    parts.append(f"Frame differences show {count} {cut_word}:")
    shown = scenes if detailed or count <= 8 else scenes[:8]
    for scene in shown:
        colours = _palette_words(scene["palette"], 2 if not detailed else 3)
        parts.append(
            f"{scene['start_seconds']:.1f}–{scene['end_seconds']:.1f} s mostly {colours}, "
            f"{scene['motion_level']} motion;"
        )
    if len(shown) < count:
        parts.append(f"and {count - len(shown)} more.")
    else:
        parts[-1] = parts[-1].rstrip(";") + "."
    return " ".join(parts)
