"""Fixtures of the inspector's browser scenarios (``ui``, ``browser``, ``page``: see ui_support.py)."""

from tests.e2e.ui_support import browser, page, ui  # noqa: F401
