"""Embedding jobs: many inputs, one vector each, through the same queues as chat jobs."""
