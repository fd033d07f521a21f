"""Pieces every Threadline area shares: configuration, Redis, API conventions, health."""
