"""Looking at media without a vision model: technical metadata and measured pixel statistics.

Everything here is computed from the file (Pillow, numpy, ffprobe, frames sampled by ffmpeg):
sizes, palettes, brightness, contrast, sharpness, differences between images and the scene cuts
of a video. None of it claims to know what the picture shows; the tools say so in their answers.
When a vision-capable LLM is configured, the tools ask it instead and this package only prepares
the frames it sees. Callers import from the modules: `colours`, `images` (statistics and
comparison), `metadata`, `video_stats` (sampled frames) and `descriptions` (sentences).
"""
