"""Batches: many jobs submitted at once, followed and collected as one."""
