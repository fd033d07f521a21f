"""Callbacks: calls the customer asked for, scheduled in their own time, dialled exactly once, retried by outcome."""
