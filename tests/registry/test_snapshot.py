"""A snapshot asked for its current value reloads only when its source changed."""

from __future__ import annotations

from app.registry.snapshot import TimedSnapshot


def test_current_reloads_only_when_the_stamp_changed() -> None:
    source = {"version": 1, "loads": 0}

    def load() -> int:
        source["loads"] += 1
        return source["version"]

    snapshot = TimedSnapshot(load, ttl_s=3600, stamp=lambda: source["version"])
    assert snapshot.get() == 1
    assert snapshot.current() == 1
    assert source["loads"] == 1  # nothing changed: no reload

    source["version"] = 2
    assert snapshot.get() == 1  # within its TTL the snapshot is stale on purpose
    assert snapshot.current() == 2  # ...but not for a caller who met something new
    assert snapshot.current() == 2
    assert source["loads"] == 2


def test_current_without_a_stamp_always_reloads() -> None:
    loads: list[int] = []
    snapshot = TimedSnapshot(lambda: loads.append(1) or len(loads), ttl_s=3600)
    assert snapshot.get() == 1
    assert snapshot.current() == 2
