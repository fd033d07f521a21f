"""Threadline's tests; their shared helpers live in tests.support."""

from __future__ import annotations

import pytest

# The helpers assert; pytest explains a failed assert only in the modules it rewrites.
pytest.register_assert_rewrite("tests.support")
