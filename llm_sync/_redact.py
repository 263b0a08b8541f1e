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
# The text may come from a server, so the pattern must be linear in it: a JWT is
# matched as the whole run of token characters from its "eyJ" (which then ends the
# attempt: no other start inside the run is tried) and its shape checked afterwards;
# a pattern that failed at its second dot would rescan the run from every later
# "eyJ" in it, quadratic in the run ("eyJ-" repeated: two minutes for 256 KiB).
_KEY_SOURCE = r"\b(?:sk|pk|rk|gsk|xai|AIza|AKIA|ASIA)[-_A-Za-z0-9]{12,}"
_PATTERN_SOURCE = (
    r"(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"
    rf"|(?P<key>{_KEY_SOURCE})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)*)"
)
_pattern: list[re.Pattern[str]] = []
# Text longer than this is redacted a window at a time (see redact()).
_WINDOW = 16 * 1024

# Every secret this process has handed to the library (API keys, access tokens),
# so that text containing one verbatim can be scrubbed without knowing its shape.
_known: set[str] = set()
_known_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so :func:`redact` removes it wherever it appears."""
    # Only text can appear in text: anything else is left to the callers' type checks
    # (see _keys.check_key), never stored where redact() would trip over it.
    if isinstance(secret, str) and len(secret) >= 6:
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
    """Return ``text`` with every known secret and every key-shaped token masked.

    Never raises: it runs while an error is being built, where an exception of its
    own would replace the error being reported.
    """
    if not text:
        return text
    if text.__class__ is not str:
        text = str(text)
    with _known_lock:
        secrets = sorted(_known.union(s for s in extra if isinstance(s, str) and s), key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, mask(s))
    if not _pattern:
        # Compiled on first use, not at import.
        _pattern.extend((re.compile(_PATTERN_SOURCE), re.compile(_KEY_SOURCE), re.compile(r"\s")))
    sub = _pattern[0].sub
    if len(text) <= _WINDOW:
        return sub(_mask_match, text)
    # One regex call holds the GIL throughout (~20 ms per 256 KiB, several times that
    # on a busy machine): long text goes through in windows, so other threads (a
    # deadline, a close()) run in between. A window ends before whitespace, where no
    # token can be cut in two.
    out = []
    start, end = 0, len(text)
    while start < end:
        cut = _window_end(text, start) if end - start > _WINDOW else end
        out.append(sub(_mask_match, text[start:cut]))
        start = cut
    return "".join(out)


def _window_end(text: str, start: int) -> int:
    """Where the window starting at ``start`` ends: before whitespace, about _WINDOW on."""
    stop = start + _WINDOW
    cut = max(text.rfind(c, start + _WINDOW // 2, stop) for c in " \n\t\r")
    if cut < 0:
        # No whitespace in the second half: the window runs to the end of this run of
        # token characters (one linear pass over it), since a key may be anywhere in it.
        found = _pattern[2].search(text, stop)
        return found.start() if found is not None else len(text)
    # Not between "Bearer" and its token: the window then ends before that word.
    word = cut
    while word > start and text[word - 1].isspace():
        word -= 1
    if text[max(start, word - 6) : word].lower() == "bearer" and word - 6 > start:
        return word - 6
    return cut


def _mask_match(m: re.Match[str]) -> str:
    if m.group("bearer") is not None:
        return m.group("bearer") + mask(m.group(0)[len(m.group("bearer")) :])
    if m.group("jwt") is not None:
        run = m.group(0)
        if _holds_jwt(run):
            return mask(run)
        # Not a token after all; a key may still sit inside the run ("eyJ-sk-...").
        return _pattern[1].sub(_mask_key, run)
    return mask(m.group(0))


def _mask_key(m: re.Match[str]) -> str:
    return mask(m.group(0))


def _holds_jwt(run: str) -> bool:
    """Whether ``run`` (token characters and dots) holds ``eyJ`` + 8, a dot, 8, a dot, 8.

    That is the shape the key pattern used to match, starting at a word boundary:
    the start of a dot-separated segment or a ``-`` inside one.
    """
    parts = run.split(".")
    for i in range(len(parts) - 2):
        if len(parts[i + 1]) < 8 or len(parts[i + 2]) < 8:
            continue
        segment = parts[i]
        if segment.startswith("eyJ"):
            start = 0
        else:
            start = segment.find("-eyJ") + 1
            if not start:
                continue
        if len(segment) - start >= 11:
            return True
    return False


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
