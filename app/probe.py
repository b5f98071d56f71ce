"""Health probes for containers, which have Python but no curl.

    python -m app.probe url http://127.0.0.1:8000/readyz
    python -m app.probe fresh /var/lib/switchboard/beat-schedule --max-age 600

Exit status 0 means healthy. Standard library only, so a probe every few seconds costs
milliseconds rather than the second it takes to import the application.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def url_ok(url: str, *, timeout: float) -> bool:
    """The URL answers 2xx (urllib raises for everything else, redirects aside)."""
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def fresh(path: Path, *, max_age: float, now: float | None = None) -> bool:
    """The file (or a sibling that a dbm backend made of it, ``path.db``…) was written within
    ``max_age`` seconds."""
    candidates = [path, *path.parent.glob(f"{path.name}.*")]
    mtimes = [p.stat().st_mtime for p in candidates if p.is_file()]
    return bool(mtimes) and (now if now is not None else time.time()) - max(mtimes) <= max_age


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.probe", description=__doc__)
    probes = parser.add_subparsers(dest="probe", required=True)
    url = probes.add_parser("url", help="a GET answers 2xx")
    url.add_argument("url")
    url.add_argument("--timeout", type=float, default=5.0)
    recent = probes.add_parser("fresh", help="a file was written recently")
    recent.add_argument("path", type=Path)
    recent.add_argument("--max-age", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)
    if args.probe == "url":
        healthy = url_ok(args.url, timeout=args.timeout)
    else:
        healthy = fresh(args.path, max_age=args.max_age)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
