"""Runner processes for the kill-and-restart tests: start one in its own process group, read
its JSON lines, kill it like a crash, and show the end of its log when a check fails."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def spawn(runner: Path, data_dir: Path, log: str, *args: str) -> subprocess.Popen[bytes]:
    """`runner data_dir *args`, its stderr in `data_dir/<log>.stderr`."""
    return subprocess.Popen(
        [sys.executable, str(runner), str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=(data_dir / f"{log}.stderr").open("wb"),
        start_new_session=True,  # its own process group: a kill takes everything it started
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the runner's process group (a crash of the whole server) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def stderr_tail(data_dir: Path, log: str) -> str:
    path = data_dir / f"{log}.stderr"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def read_json_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output from the runner within {timeout}s")
    line = proc.stdout.readline()
    assert line, f"the runner exited early (rc={proc.poll()})"
    return json.loads(line)
