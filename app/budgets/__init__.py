"""Budgets: spending limits per tenant or project that concurrent jobs cannot overrun."""
