"""AWS credentials for Bedrock: static keys or botocore's chain, and SigV4 signing of each attempt."""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Dict, Mapping, Optional, Tuple

from ..._errors import ApiRequestError, InvalidApiKeyError, MissingApiKeyError
from ..._redact import mask, register_secret

__all__ = ["INSTALL_HINT", "AwsCredentials", "Signer", "botocore_available", "import_botocore", "profile_region", "region_from_url"]

INSTALL_HINT = (
    "signing Bedrock requests with AWS credentials needs botocore: "
    "pip install 'llm-sync[bedrock]', or use a Bedrock API key instead "
    "(api_key= or AWS_BEARER_TOKEN_BEDROCK), which needs no extra"
)
_SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime

# ---------------------------------------------------------------------------
# Credentials


class AwsCredentials:
    """Static AWS credentials: an access key id, its secret, and a session token for temporary keys.

    The secret and the token are registered for redaction and never shown in ``repr``.
    """

    __slots__ = ("access_key_id", "secret_access_key", "session_token")

    def __init__(
        self, access_key_id: str, secret_access_key: str, session_token: Optional[str] = None
    ) -> None:
        if not access_key_id or not secret_access_key:
            raise ValueError("AwsCredentials needs both access_key_id and secret_access_key")
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token or None
        register_secret(secret_access_key)
        register_secret(self.session_token)

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """``AwsCredentials`` from a tuple ``(key, secret[, token])`` or a mapping; botocore objects pass."""
        if value is None or isinstance(value, AwsCredentials):
            return value
        if hasattr(value, "get_frozen_credentials"):
            return value  # a botocore Credentials object: it refreshes itself
        if isinstance(value, Mapping):
            def pick(*names: str) -> Optional[str]:
                for n in names:
                    if value.get(n):
                        return str(value[n])
                return None

            key = pick("access_key_id", "aws_access_key_id", "AccessKeyId", "access_key")
            secret = pick("secret_access_key", "aws_secret_access_key", "SecretAccessKey", "secret_key")
            token = pick("session_token", "aws_session_token", "SessionToken", "token")
            if key is None or secret is None:
                raise ValueError(
                    "credentials= mapping needs access_key_id and secret_access_key "
                    "(and optionally session_token)"
                )
            return cls(key, secret, token)
        if isinstance(value, (tuple, list)) and len(value) in (2, 3):
            return cls(*value)
        raise TypeError(
            "credentials= takes AwsCredentials, a (access_key_id, secret_access_key[, "
            f"session_token]) tuple, a mapping or a botocore Credentials object, not {type(value).__name__}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AwsCredentials):
            return NotImplemented
        return (self.access_key_id, self.secret_access_key, self.session_token) == (
            other.access_key_id,
            other.secret_access_key,
            other.session_token,
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> Tuple[str, str, Optional[str]]:
        return (self.access_key_id, self.secret_access_key, self.session_token)

    def __setstate__(self, state: Tuple[str, str, Optional[str]]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __repr__(self) -> str:
        token = ", session_token=***" if self.session_token else ""
        return f"AwsCredentials({self.access_key_id!r}, secret_access_key={mask(self.secret_access_key)!r}{token})"


def import_botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.exceptions
        import botocore.session
    except ImportError:
        raise ApiRequestError(INSTALL_HINT) from None
    return botocore


def botocore_available() -> bool:
    import importlib.util  # botocore is optional: look for it without importing it

    try:
        return importlib.util.find_spec("botocore") is not None
    except (ImportError, ValueError):
        return False


class Signer:
    """Resolves AWS credentials once per process (the botocore chain, or static keys) and signs.

    Shared by copies of a provider; pickling keeps only the configuration, and a
    forked child resolves its own credentials (a refresh lock held at fork time
    would otherwise never be released in the child).
    """

    def __init__(self, static: Any, profile: Optional[str]) -> None:
        self.static = static
        self.profile = profile
        self._lock = threading.Lock()
        self._source: Any = None
        self._pid = 0

    def __getstate__(self) -> Dict[str, Any]:
        return {"static": self.static, "profile": self.profile}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["static"], state["profile"])  # type: ignore[misc]

    def _credentials(self, botocore: Any) -> Any:
        """Frozen (access key, secret, token) credentials, refreshed by botocore when due."""
        static = self.static
        if isinstance(static, AwsCredentials):
            return botocore.credentials.ReadOnlyCredentials(
                static.access_key_id, static.secret_access_key, static.session_token
            )
        source = self._source
        if source is None or self._pid != os.getpid():
            with self._lock:
                if self._source is None or self._pid != os.getpid():
                    self._source = static if static is not None else self._resolve(botocore)
                    self._pid = os.getpid()
                source = self._source
        try:
            frozen = source.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise InvalidApiKeyError(
                f"refreshing the AWS credentials for Bedrock failed: {exc}; sign in again "
                "(aws sso login) or check the credential source"
            ) from exc
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return frozen

    def _resolve(self, botocore: Any) -> Any:
        try:
            session = botocore.session.Session(profile=self.profile)
            found = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as exc:
            raise MissingApiKeyError(
                f"the AWS profile for Bedrock does not exist: {exc}; check profile= or AWS_PROFILE",
                variable="AWS_PROFILE",
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise ApiRequestError(f"loading AWS credentials for Bedrock failed: {exc}") from exc
        if found is None:
            raise MissingApiKeyError(
                "no AWS credentials for Bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE (or pass profile= / credentials=), or use a Bedrock API key "
                "(AWS_BEARER_TOKEN_BEDROCK or api_key=)",
                variable="AWS_ACCESS_KEY_ID",
            )
        return found

    def sign(self, region: str, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Dict[str, str]:
        """``headers`` plus the SigV4 ``Authorization``, ``X-Amz-Date`` (and session token) for this moment."""
        botocore = import_botocore()
        creds = self._credentials(botocore)
        request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        botocore.auth.SigV4Auth(creds, _SERVICE, region).add_auth(request)
        return dict(request.headers.items())


def profile_region(profile: Optional[str]) -> Optional[str]:
    """The region of the AWS profile (``~/.aws/config``), when botocore is there to read it."""
    if not botocore_available():
        return None
    try:
        import botocore.session

        region = botocore.session.Session(profile=profile).get_config_variable("region")
    except Exception:  # a broken config file must not stop an explicit endpoint
        return None
    return str(region) if region else None


def region_from_url(url: str) -> Optional[str]:
    m = re.search(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.", url)
    return m.group(1) if m else None
