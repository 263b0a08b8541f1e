"""Where API keys and settings come from: the argument, then the environment, then ``.env``."""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple

from ._errors import InvalidApiKeyError, MissingApiKeyError
from ._redact import register_secret

__all__ = [
    "check_key",
    "dotenv_values_from_cwd",
    "header_value_fault",
    "load_dotenv_from_cwd",
    "missing_settings",
    "optional_key",
    "require_key",
    "setting",
]


def dotenv_values_from_cwd() -> Dict[str, Optional[str]]:
    """The variables of the ``.env`` found from the working directory upwards (not applied)."""
    from dotenv import dotenv_values, find_dotenv

    path = find_dotenv(usecwd=True)
    return dict(dotenv_values(path)) if path else {}


def load_dotenv_from_cwd() -> None:
    """Apply that ``.env`` to ``os.environ``, never overriding variables already set."""
    from dotenv import find_dotenv, load_dotenv

    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)


def setting(explicit: Optional[str], *variables: str) -> Optional[str]:
    """``explicit`` if given, else the first of ``variables`` set in the environment or ``.env``.

    The ``.env`` file is read (not applied) only when the environment lacks every
    variable, so an explicit argument or a set variable costs no file access.
    """
    if explicit is not None:
        return explicit
    for name in variables:
        got = os.environ.get(name)
        if got:
            return got
    if not variables:
        return None
    found = dotenv_values_from_cwd()
    for name in variables:
        got = found.get(name)
        if got:
            return got
    return None


def require_key(explicit: Optional[str], variable: str, provider: str, *aliases: str) -> str:
    """The API key, checked and registered for redaction, or ``MissingApiKeyError`` naming how to set it.

    ``provider`` is the name the message uses (``"Anthropic"``); the error's ``.provider``
    is left for the caller to stamp with the provider's id.
    """
    key = setting(explicit, variable, *aliases)
    if not key:
        also = f" (or {', '.join(aliases)})" if aliases else ""
        raise MissingApiKeyError(
            f"no API key for {provider}: set {variable}{also} in the environment or a .env file, "
            "or pass api_key=",
            variable=variable,
        )
    return check_key(key, provider, "api_key=" if explicit is not None else variable)


def optional_key(explicit: Optional[str], variable: Optional[str], provider: str, *aliases: str) -> Optional[str]:
    """A key a provider may go without: ``explicit``, else ``variable`` (or an alias); checked and registered."""
    key = setting(explicit, variable, *aliases) if variable else explicit
    if key is None or (isinstance(key, str) and not key):
        return None
    return check_key(key, provider, "api_key=" if explicit is not None else str(variable))


def check_key(key: object, provider: str, source: str) -> str:
    """``key`` without surrounding whitespace, registered for redaction; else a clear error.

    A key goes into an HTTP header, so it must be one line of printable ASCII: a
    bytes key used to break every later error message of the process, a line break
    inside one made requests refuse the header with the whole key in its message.
    The error names the character and its position, never the key. ``source`` says
    where the key came from (``"api_key="`` or the variable's name).
    """
    if not isinstance(key, str):
        hint = " (decode it first: api_key=key.decode())" if isinstance(key, (bytes, bytearray)) else ""
        raise TypeError(f"the API key for {provider} ({source}) must be a str, not {type(key).__name__}{hint}")
    key = key.strip()
    fault = header_value_fault(key)
    if fault:
        raise InvalidApiKeyError(
            f"the API key for {provider} ({source}) has {fault}; a key is one line of printable "
            "ASCII characters, so it was probably copied with something else: paste it again"
        )
    register_secret(key)
    return key


def header_value_fault(value: str) -> str:
    """What keeps ``value`` (stripped) from being a credential in a header, without quoting it; ``""`` if nothing."""
    if value.isascii() and value.isprintable() and " " not in value:
        return ""
    at = next(i for i, c in enumerate(value) if not ("!" <= c <= "~"))
    return f"{_describe(value[at])} at character {at + 1} of {len(value)}"


def _describe(char: str) -> str:
    named = {"\n": "a line break (\\n)", "\r": "a carriage return (\\r)", "\t": "a tab", " ": "a space"}
    if char in named:
        return named[char]
    kind = "a control character" if char.isascii() or not char.isprintable() else "a non-ASCII character"
    return f"{kind} (U+{ord(char):04X})"


def missing_settings(provider: str, missing: Sequence[Tuple[str, str]]) -> MissingApiKeyError:
    """One error naming every missing setting at once.

    ``missing`` holds ``(variable, what it is and the argument that gives it)`` pairs;
    a first item that is not an environment variable's name (``"credentials"``) is
    shown as a plain requirement.
    """
    variables = [name for name, _ in missing if name.replace("_", "").isupper()]
    parts = [
        f"{name} is not set ({what})" if name in variables else f"{name}: {what}" for name, what in missing
    ]
    where = " (variables are read from the environment or a .env file)" if variables else ""
    return MissingApiKeyError(
        f"{provider} is not configured: {'; '.join(parts)}{where}",
        variables=variables,
    )
