"""Secret redaction for anything that may reach a log, a repr or an exception."""

from __future__ import annotations

import re
import threading
from typing import Iterable, Mapping

# Header names whose values are credentials, whatever the provider.
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization", "cookie"}
)

# Shapes of well-known keys and tokens, for text where the exact secret is not known
# (a provider echoing a key back in an error body, say). Each keeps a short prefix.
_PATTERN_SOURCE = (
    r"(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<key>\b(?:sk|pk|rk|gsk|xai|AIza|AKIA|ASIA)[-_A-Za-z0-9]{12,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
_pattern: list[re.Pattern[str]] = []

# Every secret this process has handed to the library (API keys, access tokens),
# so that text containing one verbatim can be scrubbed without knowing its shape.
_known: set[str] = set()
_known_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so :func:`redact` removes it wherever it appears."""
    if secret and len(secret) >= 6:
        with _known_lock:
            _known.add(secret)


class SecretText(str):
    """A credential that is a ``str`` on the wire but masked by ``repr()``.

    Header values and tokens are kept as ``SecretText`` so that whatever prints a
    frame's locals or a dict of headers (a traceback with locals, a debugger, a log
    of ``repr(headers)``) shows ``sk-...xyz`` instead of the secret. ``str()`` and
    the bytes sent are the real value.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask(str.__str__(self)))

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        # Pickled as a plain str would lose the masking; as SecretText it keeps it.
        return (SecretText, (str.__str__(self),))


def mask(secret: str | None) -> str:
    """A short, recognisable stand-in for a secret: ``sk-...xyz``."""
    if not secret:
        return "<none>"
    if len(secret) <= 8:
        return "***"
    head = secret[:3]
    return f"{head}...{secret[-3:]}"


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """Return ``text`` with every known secret and every key-shaped token masked."""
    if not text:
        return text
    with _known_lock:
        secrets = sorted(_known.union(s for s in extra if s), key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, mask(s))
    if not _pattern:
        _pattern.append(re.compile(_PATTERN_SOURCE))  # compiled on first use, not at import
    return _pattern[0].sub(_mask_match, text)


def _mask_match(m: re.Match[str]) -> str:
    if m.group("bearer") is not None:
        return m.group("bearer") + mask(m.group(0)[len(m.group("bearer")) :])
    return mask(m.group(0))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Copy of ``headers`` with credential values masked (for debug logs)."""
    out = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk in SECRET_HEADERS or "secret" in lk or "token" in lk:
            out[k] = mask(v)
        else:
            out[k] = v
    return out
