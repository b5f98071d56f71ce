"""Options more than one command takes."""

from __future__ import annotations

from typing import Annotated

import typer

MetricsPort = Annotated[
    int | None,
    typer.Option(
        help="Serve this process's Prometheus metrics at :PORT/metrics "
        "(default SWITCHBOARD_METRICS_PORT; 0: don't).",
        min=0,
        max=65535,
    ),
]
MetricsHost = Annotated[
    str | None,
    typer.Option(help="Interface for the metrics (default SWITCHBOARD_METRICS_HOST, 0.0.0.0)."),
]
