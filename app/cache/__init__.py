"""The response cache: answers reused for identical (exact) or similar (semantic) requests."""
