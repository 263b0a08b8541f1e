"""Test support code shared by the test suite (not part of the package)."""
