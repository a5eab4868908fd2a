"""Looking at media without a vision model: technical metadata and measured pixel statistics.

Everything here is computed from the file (Pillow, numpy, ffprobe, frames sampled by ffmpeg):
sizes, palettes, brightness, contrast, sharpness, differences between images and the scene cuts
of a video. None of it claims to know what the picture shows; the tools say so in their answers.
When a vision-capable LLM is configured, the tools ask it instead and this package only prepares
the frames it sees. The package exposes what the analysis tools call.
"""

from sogni_intelligence.media.analysis.descriptions import (
    describe_comparison,
    describe_image,
    describe_video,
)
from sogni_intelligence.media.analysis.images import compare_images, image_stats
from sogni_intelligence.media.analysis.metadata import image_metadata, media_metadata
from sogni_intelligence.media.analysis.video_stats import data_uri, frames_for_vision, video_stats

__all__ = [
    "compare_images",
    "data_uri",
    "describe_comparison",
    "describe_image",
    "describe_video",
    "frames_for_vision",
    "image_metadata",
    "image_stats",
    "media_metadata",
    "video_stats",
]
