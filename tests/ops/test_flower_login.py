"""Where Flower's login comes from, and what ``up`` says about it."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.cli.flower import PASSWORD_FILE, flower_login
from app.config import Settings
from app.errors import InvalidInput


@pytest.fixture(autouse=True)
def no_flower_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)


def test_a_password_is_made_once_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert flower_login(settings) is None  # nothing made unless asked
    first = flower_login(settings, create=True)
    assert first is not None
    assert first.basic_auth == f"admin:{first.password}"
    assert len(first.password) >= 24
    assert stat.S_IMODE((tmp_path / PASSWORD_FILE).stat().st_mode) == 0o600
    assert flower_login(settings, create=True) == first
    assert first.password in first.describe()


def test_a_configured_login_wins_and_is_not_echoed(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, flower_user="ops", flower_password=SecretStr("s3cret:with-colon")
    )
    login = flower_login(settings, create=True)
    assert login is not None
    assert (login.basic_auth, login.generated) == ("ops:s3cret:with-colon", False)
    assert "s3cret" not in login.describe()
    assert "SWITCHBOARD_FLOWER_PASSWORD" in login.describe()
    assert not (tmp_path / PASSWORD_FILE).exists()


def test_flowers_own_variable_wins_over_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "alice:one,bob:two")
    login = flower_login(Settings(data_dir=tmp_path, flower_password=SecretStr("x")))
    assert login is not None
    assert (login.basic_auth, login.user) == ("alice:one,bob:two", "alice")
    assert "one" not in login.describe()


@pytest.mark.parametrize(
    ("user", "password", "flower_env", "param"),
    [
        ("ad:min", "pw", None, "SWITCHBOARD_FLOWER_USER"),
        ("", "pw", None, "SWITCHBOARD_FLOWER_USER"),
        ("admin", "a,b", None, "SWITCHBOARD_FLOWER_PASSWORD"),
        ("admin", "", None, "SWITCHBOARD_FLOWER_PASSWORD"),
        ("admin", None, "nocolon", "FLOWER_BASIC_AUTH"),
        ("admin", None, "alice:", "FLOWER_BASIC_AUTH"),
    ],
)
def test_a_login_flower_could_never_accept_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    password: str | None,
    flower_env: str | None,
    param: str,
) -> None:
    if flower_env is not None:
        monkeypatch.setenv("FLOWER_BASIC_AUTH", flower_env)
    secret = SecretStr(password) if password is not None else None
    settings = Settings(data_dir=tmp_path, flower_user=user, flower_password=secret)
    with pytest.raises(InvalidInput) as refused:
        flower_login(settings, create=True)
    assert (refused.value.code, refused.value.param) == ("invalid_flower_login", param)


def test_switchboard_flower_says_what_is_wrong_and_exits(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SWITCHBOARD_FLOWER_PASSWORD": "a,b",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "flower", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid_flower_login:")
    assert "Traceback" not in done.stderr
