"""Prometheus metrics: every series Switchboard exports starts with ``switchboard_``.

Counted where the work happens: each worker process counts its jobs, attempts, tokens, cost,
latencies, rate-limit waits, fallbacks, breaker transitions and webhook tries, and serves them
itself (``app.metrics.exposition``); the API counts its requests and the jobs it cancels, and
reads the gateway's state — queues, live jobs, breakers — when it is scraped
(``app.metrics.state``). Every name, label and bucket is in ``app.metrics.families``.
"""
