"""``python -m app.probe``: the health checks of the compose file's own containers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.probe import fresh, main


def test_a_url_probe_passes_on_2xx_only(api_url: str) -> None:
    assert main(["url", f"{api_url}/healthz"]) == 0
    assert main(["url", f"{api_url}/v1/jobs"]) == 1  # 401 without a key
    assert main(["url", f"{api_url}/no-such-page"]) == 1
    assert main(["url", "http://127.0.0.1:1/"]) == 1  # nothing listens
    assert main(["url", "file:///etc/passwd"]) == 1


def test_a_fresh_probe_reads_the_newest_of_a_file_and_its_dbm_siblings(tmp_path: Path) -> None:
    schedule = tmp_path / "beat-schedule"
    assert not fresh(schedule, max_age=60)  # not there yet
    sibling = tmp_path / "beat-schedule.db"
    sibling.write_text("x")
    assert fresh(schedule, max_age=60)
    old = time.time() - 3600
    os.utime(sibling, (old, old))
    assert not fresh(schedule, max_age=60)
    assert fresh(schedule, max_age=7200)


@pytest.mark.parametrize(("max_age", "status"), [("600", 0), ("0.000001", 1)])
def test_the_probe_runs_as_the_image_runs_it(tmp_path: Path, max_age: str, status: int) -> None:
    schedule = tmp_path / "beat-schedule"
    schedule.write_text("x")
    old = time.time() - 5
    os.utime(schedule, (old, old))
    argv = [sys.executable, "-m", "app.probe", "fresh", str(schedule), "--max-age", max_age]
    assert subprocess.run(argv, check=False, timeout=30).returncode == status
