"""Sphinx configuration for llm_sync (offline: no intersphinx, nothing fetched)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# autodoc imports the package from this checkout.
sys.path.insert(0, str(ROOT))
# The docs' own extension: provider and catalog tables computed from the code at build time.
sys.path.insert(0, str(ROOT / "docs" / "_ext"))


def _read_version() -> str:
    # Read llm_sync/_version.py as text: no need to import the package (and its dependencies)
    # just to learn the version.
    text = (ROOT / "llm_sync" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("no __version__ in llm_sync/_version.py")
    return match.group(1)


project = "llm_sync"
author = "llm_sync contributors"
copyright = "llm_sync contributors"
release = _read_version()
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "provider_support"]

# Docstrings are reStructuredText; napoleon (Google/NumPy style) is not used.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

nitpicky = False
# The notebook is executed by tests/examples/test_notebook.py, not rendered here.
exclude_patterns = ["_build", "notebooks", "_ext"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_theme = "alabaster"
