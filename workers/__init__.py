"""Celery: the app, its thin tasks, and the per-process resources they use."""
