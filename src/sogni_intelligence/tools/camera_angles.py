"""The camera-angle phrase `change_angle` takes, read into numbers a renderer can use.

The phrase names an azimuth, an elevation and a distance ("front-right quarter view eye-level
shot medium shot"); any part may be missing and takes its default. Words left over are
reported, so a caller learns that part of the phrase did nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Degrees around the subject: + turns to its right, past 90 the camera is behind it.
AZIMUTHS = {
    "front view": 0.0,
    "front-right quarter view": 45.0,
    "right side view": 90.0,
    "back-right quarter view": 135.0,
    "back view": 180.0,
    "back-left quarter view": -135.0,
    "left side view": -90.0,
    "front-left quarter view": -45.0,
}
# Tilt: -1 looks up from below, +1 looks down from above.
ELEVATIONS = {
    "low-angle shot": -0.7,
    "eye-level shot": 0.0,
    "elevated shot": 0.4,
    "high-angle shot": 0.8,
}
# Zoom: above 1 is closer than the source, below 1 farther away.
DISTANCES = {"close-up": 1.5, "medium shot": 1.0, "wide shot": 0.7}
DEFAULT_AZIMUTH = "front-right quarter view"


@dataclass(frozen=True)
class CameraAngle:
    degrees: float
    tilt: float
    zoom: float
    unknown: str = ""

    def scaled(self, strength: float) -> CameraAngle:
        """The same move made `strength` (0–1) of the way from the source's own view."""
        return CameraAngle(
            self.degrees * strength,
            self.tilt * strength,
            1 + (self.zoom - 1) * strength,
            self.unknown,
        )


def parse_angle(text: str | None) -> CameraAngle:
    rest = " ".join((text or "").lower().replace(",", " ").split())
    found = []
    for table, default in (
        (AZIMUTHS, DEFAULT_AZIMUTH),
        (ELEVATIONS, "eye-level shot"),
        (DISTANCES, "medium shot"),
    ):
        # Whole words only: "front view" must not match inside "front-left quarter view".
        for name in table:
            pattern = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
            if re.search(pattern, rest):
                rest = re.sub(pattern, " ", rest, count=1)
                break
        else:
            name = default
        found.append(table[name])
    return CameraAngle(*found, unknown=" ".join(rest.split()))


def describe(angle: CameraAngle) -> str:
    """The phrase naming the view nearest to `angle`: what a diffusion model is prompted with."""

    def turn(name: str) -> float:  # the shorter way round between the two azimuths
        return abs((AZIMUTHS[name] - angle.degrees + 180) % 360 - 180)

    elevation = min(ELEVATIONS, key=lambda name: abs(ELEVATIONS[name] - angle.tilt))
    distance = min(DISTANCES, key=lambda name: abs(DISTANCES[name] - angle.zoom))
    return f"{min(AZIMUTHS, key=turn)}, {elevation}, {distance}"
