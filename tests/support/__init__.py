"""Helpers shared by the test modules, one module per concern; no test module imports another."""
