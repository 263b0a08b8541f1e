"""Where API keys and settings come from: the argument, then the environment, then ``.env``."""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple

from ._errors import MissingApiKeyError
from ._redact import register_secret

__all__ = ["dotenv_values_from_cwd", "load_dotenv_from_cwd", "missing_settings", "require_key", "setting"]


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
    """The API key, registered for redaction, or ``MissingApiKeyError`` naming how to set it.

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
    key = key.strip()
    register_secret(key)
    return key


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
