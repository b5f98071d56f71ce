"""The HTTP API: the app factory's parts, dependencies, error rendering, health."""
