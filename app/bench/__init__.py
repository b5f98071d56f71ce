"""Benchmarks: each starts what it measures and returns one JSON-able dict."""
