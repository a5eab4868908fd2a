"""Video building blocks on top of ffmpeg: keyframe clips with camera motion, joins with
transitions, splices and rescales (burnt-in overlays and subtitles build on these in
`media/overlay.py` and `media/subtitles.py`).

Nothing here knows about tools or indices; callers pass file paths and sizes. Every output is
an MP4 with H.264 video (yuv420p, even dimensions, constant frame rate) and an AAC stereo track
(silence when there is nothing to hear), so any two outputs can be joined without special cases.
Callers import from the modules: `encoding` (codecs, frame arithmetic, filter graphs), `probe`
(what a source is, frames taken from it), `motion` (camera moves, soundtracks) and `clips` (the
operations).
"""
