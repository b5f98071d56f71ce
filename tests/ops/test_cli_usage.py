"""The installed ``switchboard`` command answers a mistyped command line as it answers any
other bad input: one readable line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SWITCHBOARD = str(Path(sys.executable).with_name("switchboard"))


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["no-such-command"], "error: No such command 'no-such-command'."),
        (["--no-such-option"], "error: No such option: --no-such-option"),
        (["keys", "add"], "error: Missing argument 'provider'."),
        (["costs", "--by", "colour"], "error: Invalid value for '--by': "),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv: list[str], says: str) -> None:
    done = subprocess.run(
        [SWITCHBOARD, *argv], capture_output=True, text=True, timeout=60, env={"COLUMNS": "40"}
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # not wrapped, even on a narrow terminal
    assert lines[0].startswith(says)
    assert "Traceback" not in done.stderr


def test_help_is_not_an_error() -> None:
    done = subprocess.run([SWITCHBOARD, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "demo" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            "SWITCHBOARD_BASE_URLS",
            '{"olama": "http://gpu-box:11434"}',
            "base_urls names 'olama', which is not a provider of the catalog",
        ),
        ("SWITCHBOARD_BASE_URLS", "ollama=http://gpu-box", "SWITCHBOARD_BASE_URLS: not valid JSON"),
        ("SWITCHBOARD_API_PORT", "eighty", "SWITCHBOARD_API_PORT: Input should be a valid integer"),
    ],
)
def test_a_setting_that_does_not_parse_is_one_line_before_anything_is_touched(
    variable: str, value: str, says: str
) -> None:
    # No database answers at this URL: the setting is refused before one is needed.
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", variable: value}
    done = subprocess.run(
        [SWITCHBOARD, "migrate"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: invalid_settings: "), line
    assert says in line
