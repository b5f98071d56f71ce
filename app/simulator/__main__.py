"""``python -m app.simulator [--host H] [--port P] [--config FILE]``: serve the simulator."""

from __future__ import annotations

import argparse

from app.simulator.config import default_config, load_config
from app.simulator.server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--config", help="a JSON or TOML SimulatorConfig (default: built-in)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else default_config()
    run(args.host, args.port, config, log_level=args.log_level)


if __name__ == "__main__":
    main()
