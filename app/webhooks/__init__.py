"""Signed webhook callbacks (Standard Webhooks): endpoints, the outbox, delivery, SSRF guard."""
