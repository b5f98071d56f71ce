"""Tenants: who owns jobs, batches and reports, and the gateway keys they call with."""
