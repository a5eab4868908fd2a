"""The cluster benchmark's reduced form: two replicas and two workers on PostgreSQL lose one
of each part-way, and every workflow and chat run still completes, gap-free, each step once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cluster.py"


def test_the_quick_cluster_run_loses_nothing(fresh_postgres_url: str) -> None:
    command = [sys.executable, str(BENCH), "--quick", "--takeover-after", "4"]
    done = subprocess.run(
        [*command, "--database-url", fresh_postgres_url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "12 passed, 0 failed", done.stdout
