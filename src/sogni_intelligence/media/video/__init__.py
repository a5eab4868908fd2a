"""Video building blocks on top of ffmpeg: keyframe clips with camera motion, joins with
transitions, splices and rescales (burnt-in overlays and subtitles build on these in
`media/overlay.py` and `media/subtitles.py`).

Nothing here knows about tools or indices; callers pass file paths and sizes. Every output is
an MP4 with H.264 video (yuv420p, even dimensions, constant frame rate) and an AAC stereo track
(silence when there is nothing to hear), so any two outputs can be joined without special cases.
The package exposes what the video tools call; `encoding`, `probe`, `motion` and `clips` hold it.
"""

from sogni_intelligence.media.video.clips import join, keyframe_clip, rescale, splice
from sogni_intelligence.media.video.encoding import FPS, even, pick_fps
from sogni_intelligence.media.video.motion import Motion, Soundtrack, pick_motion
from sogni_intelligence.media.video.probe import VideoFacts, cover, extract_frame, inspect

__all__ = [
    "FPS",
    "Motion",
    "Soundtrack",
    "VideoFacts",
    "cover",
    "even",
    "extract_frame",
    "inspect",
    "join",
    "keyframe_clip",
    "pick_fps",
    "pick_motion",
    "rescale",
    "splice",
]
