"""Bearer tokens that expire: a fixed token, a callable, or a cloud SDK's credential object, renewed before they lapse.

A :class:`BearerToken` wraps what the caller gave as a provider's ``token_provider``
and answers two questions for every attempt of a request: the token to send now
(:meth:`BearerToken.get`, refreshed ahead of its expiry) and, after a 401, whether a
new one was obtained (:meth:`BearerToken.renew`), so that the provider's
``HttpCall.on_unauthorized`` hook sends the request once more. Accepted sources:

- a zero-argument callable returning the token text, or an object with ``.token``
  and ``.expires_on`` (epoch seconds), such as azure-identity's
  ``get_bearer_token_provider(...)``; called before every attempt unless it gave an
  expiry, in which case the token is reused until shortly before it;
- an azure-core ``TokenCredential`` (``DefaultAzureCredential()``...): an object with
  ``get_token(*scopes)`` returning ``(token, expires_on)``;
- a google-auth ``Credentials`` object (application default credentials, a service
  account...): an object with ``refresh(request)``, ``token`` and ``valid``.

Tokens are kept as :class:`~llm_sync._redact.SecretText` and registered for
redaction, so they show masked in reprs, tracebacks and error texts.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Optional, Sequence, Tuple

from .._errors import LlmError, NetworkError, OAuthError
from .._keys import header_value_fault
from .._redact import SecretText, register_secret

__all__ = ["EXPIRY_SKEW", "BearerToken", "describe_source"]

#: A token this close to its expiry (seconds) is renewed before it is sent.
EXPIRY_SKEW = 120.0

_STATIC, _CALLABLE, _AZURE, _GOOGLE = "static", "callable", "azure", "google"


def describe_source(source: Any) -> str:
    """The kind of token source, or TypeError naming what is accepted."""
    if isinstance(source, str):
        if not source.strip():
            raise ValueError("the token is empty; pass a token, a callable returning one, or leave it None")
        return _STATIC
    if callable(getattr(source, "get_token", None)):
        return _AZURE
    if callable(getattr(source, "refresh", None)) and hasattr(source, "token"):
        return _GOOGLE
    if callable(source):
        return _CALLABLE
    raise TypeError(
        "token_provider must be a token string, a callable returning one, an azure-core "
        "TokenCredential (DefaultAzureCredential()) or a google-auth Credentials object, "
        f"not {type(source).__name__}"
    )


class BearerToken:
    """The current token of one credential source; thread-safe, shared by a provider's requests.

    ``label`` names the source in errors (``"the Azure token_provider"``) and ``hint``
    says how to fix a failure to obtain a token.
    """

    def __init__(self, source: Any, *, scopes: Sequence[str] = (), label: str, hint: str) -> None:
        self._kind = describe_source(source)
        self._source = source
        self._scopes = tuple(scopes)
        self._label = label
        self._hint = hint
        self._lock = threading.Lock()
        self._token: Optional[SecretText] = None
        self._expires: Optional[float] = None  # epoch seconds, when the source says
        self._pid = os.getpid()
        if self._kind == _STATIC:
            fault = header_value_fault(source.strip())
            if fault:
                raise OAuthError(f"the token from {label} has {fault}; a token is one line of printable ASCII")
            self._token = _secret(source.strip())

    @property
    def source(self) -> Any:
        """What the caller gave (a token, a callable, a credential object)."""
        return self._source

    @property
    def renewable(self) -> bool:
        """False for a fixed token: nothing can replace it after a 401."""
        return self._kind != _STATIC

    def get(self) -> SecretText:
        """The token to send now, obtained or refreshed first when it is missing or about to expire."""
        if self._kind == _STATIC:
            assert self._token is not None
            return self._token
        if self._pid != os.getpid():
            # A forked child: a lock held by a parent thread at fork time would never be released.
            self._lock = threading.Lock()
            self._pid = os.getpid()
        with self._lock:
            return self._current()

    def renew(self, rejected: str) -> bool:
        """After a 401 for ``rejected``: drop it so the next :meth:`get` obtains a new one.

        Returns False when nothing can be renewed (a fixed token). When another
        thread already replaced the rejected token, the new one is kept.
        """
        if self._kind == _STATIC:
            return False
        with self._lock:
            if self._token is None or self._token == rejected:
                self._token = None
                self._expires = None
                if self._kind == _GOOGLE and self._source.token == rejected:
                    self._refresh_google()
        return True

    # -- the sources ---------------------------------------------------------------

    def _current(self) -> SecretText:
        if self._kind == _GOOGLE:
            # google-auth counts a token as invalid a few minutes before it expires.
            if not self._source.valid:
                self._refresh_google()
            token = self._source.token
            if self._token is None or self._token != token:
                self._token = self._checked(token)
            return self._token
        if self._token is not None and self._expires is not None and time.time() < self._expires - EXPIRY_SKEW:
            return self._token
        if self._kind == _AZURE:
            token, expires = self._call(lambda: _unpack(self._source.get_token(*self._scopes)))
        else:
            token, expires = self._call(lambda: _unpack(self._source()))
        self._token = self._checked(token)
        self._expires = expires
        return self._token

    def _refresh_google(self) -> None:
        import requests
        from google.auth import exceptions as google_errors
        from google.auth.transport.requests import Request

        session = requests.Session()
        try:
            self._source.refresh(Request(session))
        except google_errors.TransportError as exc:
            raise NetworkError(
                f"could not reach Google's token endpoint to refresh {self._label}: {exc}"
            ) from None
        except google_errors.GoogleAuthError as exc:
            raise OAuthError(
                f"{self._label} could not give a token ({type(exc).__name__}: {exc}); {self._hint}"
            ) from None
        finally:
            session.close()

    def _call(self, fetch: Callable[[], Tuple[Any, Optional[float]]]) -> Tuple[Any, Optional[float]]:
        try:
            return fetch()
        except LlmError:
            raise
        except Exception as exc:
            # The source's own exception (azure-identity's ClientAuthenticationError, a
            # user's callable failing) says what went wrong; the traceback stays out of it.
            raise OAuthError(
                f"{self._label} could not give a token ({type(exc).__name__}: {exc}); {self._hint}"
            ) from None

    def _checked(self, token: Any) -> SecretText:
        if not isinstance(token, str) or not token.strip():
            raise OAuthError(
                f"{self._label} gave {'an empty token' if isinstance(token, str) else type(token).__name__} "
                f"instead of a token string; {self._hint}"
            )
        fault = header_value_fault(token.strip())
        if fault:
            raise OAuthError(f"{self._label} gave a token with {fault}; {self._hint}")
        return _secret(token.strip())

    def __repr__(self) -> str:
        return f"BearerToken({self._kind}, {self._label})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        state["_token"] = None if self._kind != _STATIC else self._token
        state["_expires"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pid = os.getpid()


def _unpack(got: Any) -> Tuple[Any, Optional[float]]:
    """``(token, expires_on)`` from a str, an AccessToken-like object or a ``(token, expires_on)`` pair."""
    if isinstance(got, str):
        return got, None
    token = getattr(got, "token", None)
    if token is not None:
        expires = getattr(got, "expires_on", None)
        return token, float(expires) if isinstance(expires, (int, float)) else None
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], (int, float)):
        return got[0], float(got[1])
    return got, None


def _secret(token: str) -> SecretText:
    register_secret(token)
    return SecretText(token)
