"""Routing: which model serves a job, and what happens when it fails."""
