"""Where the tests find the repository and the real wire recordings (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# ../shared/wire next to the repository; tests that need it skip when it is absent.
WIRE = REPO.parent / "shared" / "wire"
