"""``import llm_sync`` stays cheap: no jsonschema, no provider module, nothing read from disk."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _modules_after(code: str) -> dict[str, object]:
    probe = textwrap.dedent(
        f"""
        import json, sys
        {code}
        print(json.dumps({{"modules": sorted(sys.modules)}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_import_pulls_in_neither_jsonschema_nor_any_provider() -> None:
    modules = _modules_after("import llm_sync")["modules"]
    assert isinstance(modules, list)
    assert not [m for m in modules if m.startswith("jsonschema")]
    assert not [m for m in modules if m.startswith("llm_sync.providers.") and m != "llm_sync.providers._base"]
    for heavy in ("dotenv", "sseclient", "botocore", "requests", "urllib3"):
        assert heavy not in modules, heavy
    assert not [m for m in modules if m.startswith("opentelemetry")]


def test_otel_loads_opentelemetry_only_when_asked_for() -> None:
    modules = _modules_after("import llm_sync; import llm_sync.otel")["modules"]
    assert not [m for m in modules if m.startswith("opentelemetry")]  # instrument() imports it


def test_a_provider_name_imports_its_module_on_first_use() -> None:
    modules = _modules_after("import llm_sync; llm_sync.testing.FakeLlmProvider")["modules"]
    assert "llm_sync.testing" in modules
