"""The HTTP side of a stream: one requests Session per provider, sending, and reading bytes."""

from __future__ import annotations

import os
import threading
import weakref
import zlib
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Union
from urllib.parse import urljoin, urlsplit

from .._errors import (
    ApiRequestError,
    LlmError,
    NetworkError,
    RequestTimeoutError,
    StreamInterruptedError,
    StreamReadError,
    error_for_status,
    internal_error,
)
from .._retry import parse_retry_after

if TYPE_CHECKING:
    import requests

__all__ = [
    "ErrorClassifier",
    "Transport",
    "default_classifier",
    "from_requests",
    "read_bounded",
    "read_chunks",
    "send",
]

# Error bodies are read only this far: an HTML error page can be large.
_MAX_ERROR_BODY = 64 * 1024
# The most bytes read_chunks hands on at once, however large an HTTP chunk or however
# far a compressed body inflates.
_PIECE = 64 * 1024
_MAX_REDIRECTS = 3
# Idle keep-alive connections kept per host. Above this many concurrent streams to
# one host, urllib3 discards (and logs) the extra connections as they finish.
_POOL_SIZE = 256
# Prepared requests a Transport keeps as templates (see _prepare); Bedrock's signed
# headers differ on every request, so the cache is bounded and starts over when full.
_MAX_TEMPLATES = 32

ErrorClassifier = Callable[[int, Mapping[str, str], str], LlmError]


class Transport:
    """A lazily created requests Session, shared by all streams of one provider.

    Thread-safe; after ``fork`` the child builds its own Session (a pooled socket
    shared with the parent would interleave two processes' bytes); pickling keeps
    nothing; the Session is closed when the transport is garbage collected.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Optional[requests.Session] = None
        self._pid = 0
        # Proxies and TLS settings from the environment, per origin (see settings()).
        self._settings: dict[str, dict[str, Any]] = {}
        # Prepared requests without their bodies, by method, URL and headers (see _prepare).
        self._templates: dict[tuple[Any, ...], requests.PreparedRequest] = {}

    def session(self) -> requests.Session:
        session = self._session
        if session is not None and self._pid == os.getpid():
            return session
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                # The parent's Session is dropped, not closed: closing would shut
                # sockets the parent still uses.
                self._session = _new_session()
                self._settings = {}
                self._templates = {}
                self._pid = os.getpid()
                weakref.finalize(self, self._session.close)
            return self._session

    def settings(self, url: str) -> dict[str, Any]:
        """The proxies, CA bundle and client certificate for ``url``, as requests would pick them.

        requests reads them from the environment on every request, which scans all of
        ``os.environ`` for proxy variables (about 0.1 ms, a fifth of a warm request on
        loopback); like httpx, they are read once, when an origin is first used.
        """
        origin = _origin(url)
        found = self._settings.get(origin)
        if found is None:
            env = self.session().merge_environment_settings(url, {}, None, None, None)
            found = {"proxies": env["proxies"], "verify": env["verify"], "cert": env["cert"]}
            self._settings[origin] = found
        return found

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            self._settings = {}
            self._templates = {}
        if session is not None and self._pid == os.getpid():
            session.close()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<Transport session={'open' if self._session is not None else 'none'}>"


def _new_session() -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.cookies import RequestsCookieJar

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            _track(self.poolmanager)
            # The pool of each origin, found again without the PoolManager's lock: a
            # thread that takes that lock may have to wait for the GIL while holding
            # it, and hundreds of threads starting streams at once queue behind it.
            # A pool the manager lets go of (evicted, or cleared by close()) is
            # forgotten here too, so the manager still decides which pools live.
            origins: Dict[Any, Any] = {}
            self.origin_pools = origins
            pools = self.poolmanager.pools
            dispose = pools.dispose_func

            def forget(pool: Any) -> None:
                # A copy in one step: another thread may add an origin meanwhile.
                for key, p in list(origins.items()):
                    if p is pool:
                        origins.pop(key, None)
                if dispose is not None:
                    dispose(pool)

            pools.dispose_func = forget

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            # requests >= 2.32.2 calls this for every request; older ones call get_connection.
            if proxies and any(proxies.values()):
                return super().get_connection_with_tls_context(request, verify, proxies, cert)
            host, options = self.build_connection_pool_key_attributes(request, verify, cert)
            try:
                key = (*sorted(host.items()), *sorted(options.items()))
                pool = self.origin_pools.get(key)
            except TypeError:  # an option that is not hashable: no shortcut
                return super().get_connection_with_tls_context(request, verify, proxies, cert)
            if pool is None or pool.pool is None:  # new, or closed since
                pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
                self.origin_pools[key] = pool
            return pool

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            _track(manager)
            return manager

    class _Cookies(RequestsCookieJar):
        def extract_cookies(self, response: Any, request: Any) -> None:
            # The session's jar takes its lock for every answer: with hundreds of threads
            # starting streams at once, one that holds it while it waits for the GIL
            # stalls all the others. An answer that sets no cookie needs no lock.
            get_all = getattr(response.info(), "get_all", None)
            if get_all is None or get_all("Set-Cookie") or get_all("Set-Cookie2"):
                super().extract_cookies(response, request)

    session = requests.Session()
    session.cookies = _Cookies()
    # Only the codings read_chunks inflates in bounded steps (requests would also offer
    # br and zstd when their packages are installed).
    session.headers["Accept-Encoding"] = "gzip, deflate"
    adapter = _Adapter(pool_connections=8, pool_maxsize=_POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _track(manager: Any) -> None:
    from ._connections import TrackedHTTPConnectionPool, TrackedHTTPSConnectionPool

    manager.pool_classes_by_scheme = {
        "http": TrackedHTTPConnectionPool,
        "https": TrackedHTTPSConnectionPool,
    }


def send(
    transport: Transport,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: Optional[bytes],
    *,
    connect_timeout: Optional[float],
    read_timeout: Optional[float],
    classify: ErrorClassifier,
) -> requests.Response:
    """Send the request and return a streaming 2xx response, or raise a typed error.

    Redirects are followed only to the same origin and only for 307/308 (which keep
    the method and body); a redirect elsewhere would hand the credentials to
    another host, so it is an error instead.

    The headers carry the key, and error reporters (Sentry, Django's debug page,
    ``pytest --showlocals``) print the local variables of every frame a traceback
    passes through: so the headers are held here only inside a :class:`_Hidden`,
    and the frames of requests and urllib3 under a failure are cleared (see
    :func:`_forget_locals`).
    """
    import requests

    hidden = _Hidden(headers)
    del headers
    if url.startswith("http://"):
        _warn_plain_http(url, hidden.value)
    session = transport.session()
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            resp = session.send(
                _prepare(transport, session, method, url, hidden.value, body),
                stream=True,
                timeout=(connect_timeout, read_timeout),
                allow_redirects=False,
                **transport.settings(url),
            )
        except requests.exceptions.RequestException as exc:
            failure: Optional[LlmError] = _send_error(exc, url, connect_timeout, read_timeout)
            _forget_locals(exc)
        except ValueError as exc:
            # Where requests lets a bad header value through (older versions), http.client
            # refuses it with a ValueError quoting the value: the same error as InvalidHeader.
            if not str(exc).startswith("Invalid header"):
                raise
            failure = _bad_header()
            _forget_locals(exc)
        else:
            failure = None
        if failure is not None:
            # Raised outside the except block: the requests error is the cause (or,
            # for a bad header, nothing), never an implicit context.
            raise failure
        status = resp.status_code
        if 200 <= status < 300:
            return resp
        if 300 <= status < 400:
            location = resp.headers.get("location", "")
            resp.close()
            target = urljoin(url, location)
            if status in (307, 308) and location and _origin(target) == _origin(url):
                url = target
                continue
            raise ApiRequestError(
                f"{_origin(url)} answered {status} redirecting to {_origin(target) or '(nowhere)'}; "
                "redirects to another host or that change the method are not followed, so "
                "the credentials stay with the host you configured; set base_url to the final address",
                status=status,
            )
        # The body is read in a helper so that it is no local of this frame: a server
        # can echo the key in it, and this frame is in the error's traceback.
        raise classify(status, resp.headers, _read_and_close(resp))
    raise ApiRequestError(f"more than {_MAX_REDIRECTS} redirects from {_origin(url)}")


def _read_and_close(resp: requests.Response) -> str:
    """The (bounded) text of an error response, which is closed after."""
    try:
        return read_bounded(resp)
    finally:
        resp.close()


class _Hidden:
    """Headers that must not show where frame locals are printed: the repr names them, without values."""

    __slots__ = ("value",)

    def __init__(self, value: Mapping[str, str]) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<hidden: {', '.join(sorted(k.lower() for k in self.value))}>"


def _send_error(
    exc: BaseException, url: str, connect_timeout: Optional[float], read_timeout: Optional[float]
) -> LlmError:
    """The typed error for a failure to send, with ``exc`` as its cause where that is safe."""
    import requests

    err: LlmError
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        err = RequestTimeoutError(
            f"could not connect to {_origin(url)} within {connect_timeout} s; check the "
            "address, or raise the connect timeout",
            phase="connect",
        )
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        err = RequestTimeoutError(
            f"{_origin(url)} sent no response headers within {read_timeout} s", phase="first_event"
        )
    elif isinstance(exc, requests.exceptions.InvalidHeader):
        # Its message quotes the header value, which may be a key: neither it nor the
        # exception travels on. Keys are checked when they come in, so this is another
        # header (a custom one, or a token from elsewhere).
        return _bad_header()
    elif isinstance(exc, requests.exceptions.InvalidURL):
        err = ApiRequestError(f"invalid URL {url!r}: {exc}; check base_url")
    elif isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        err = ApiRequestError(f"invalid URL {url!r}: it needs an http:// or https:// prefix; check base_url")
    else:
        err = NetworkError(f"could not reach {_origin(url)}: {_reason(exc)}")
    err.__cause__ = exc
    return err


def _bad_header() -> ApiRequestError:
    return ApiRequestError(
        "a request header is not valid (a line break, or leading whitespace, in a header "
        "value); check the key and any extra headers"
    )


def _forget_locals(exc: BaseException) -> None:
    """Clear the local variables of the finished frames under ``exc`` and its chained errors.

    Those are requests' and urllib3's frames, where the request headers (and so the
    key) sit in plain dicts. The file names and line numbers stay.
    """
    import traceback

    seen: Optional[BaseException] = exc
    for _ in range(16):  # chains here are a few errors long; the bound guards against cycles
        if seen is None:
            return
        traceback.clear_frames(seen.__traceback__)  # the executing frames are skipped
        seen = seen.__cause__ or seen.__context__


# Origins already warned about, or found to be this machine (see _warn_plain_http).
_checked_origins: set[str] = set()
# Header names that carry a key in some provider's requests.
_KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization")


def _warn_plain_http(url: str, headers: Mapping[str, str]) -> None:
    """Warn, once per origin, when a key is about to go over plain http to another machine."""
    origin = _origin(url)
    if origin in _checked_origins:
        return
    if not any(v and k.lower() in _KEY_HEADERS for k, v in headers.items()):
        return
    host = (urlsplit(url).hostname or "").lower()
    _checked_origins.add(origin)
    if _is_loopback(host):
        return
    import warnings

    message = (
        f"llm_sync is sending an API key over plain http:// to {host}, where anyone on the "
        "network path can read it; use an https:// base_url (this warning is shown once per "
        "host and port)"
    )
    try:
        warnings.warn(message, UserWarning, stacklevel=3)
    except UserWarning:
        # Warnings are errors here (-W error): then the key is not sent at all, and the
        # stream fails with that reason rather than with an error from deep inside.
        _checked_origins.discard(origin)
        raise ApiRequestError(message.split(" (this warning")[0]) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_bounded(resp: requests.Response) -> str:
    """The body as text, at most 64 KiB of it (error bodies and pages only)."""
    import requests
    import urllib3.exceptions

    data = bytearray()
    try:
        for chunk in read_chunks(resp):
            data += chunk
            if len(data) >= _MAX_ERROR_BODY:
                break
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError, StreamReadError):
        pass  # the status already tells what happened; keep what arrived
    return bytes(data[:_MAX_ERROR_BODY]).decode(resp.encoding or "utf-8", errors="replace")


def default_classifier(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    provider: Optional[str] = None,
    model: Optional[str] = None,
) -> LlmError:
    """The error for a non-2xx answer when the provider has no better reading of it."""
    return error_for_status(
        status,
        f"{provider or 'the server'} answered HTTP {status}: {error_summary(headers, body)}",
        provider=provider,
        model=model,
        body=body,
        retry_after=parse_retry_after(headers),
    )


def error_summary(headers: Mapping[str, str], body: str) -> str:
    """A short human reading of an error body: the JSON message, or a text snippet."""
    import json

    ctype = (headers.get("content-type") or "").lower()
    text = body.strip()
    if "html" in ctype or text[:15].lower().startswith(("<!doctype", "<html")):
        return f"an HTML page ({_page_snippet(text)!r}), which usually means a proxy or a wrong base_url"
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    message = _find_message(parsed)
    return message if message else text[:300]


def _page_snippet(text: str) -> str:
    """The page's title, or else its first 200 characters of text without the tags.

    The page comes from whatever answered, so each pattern here is linear: a tag
    is ``<`` up to the next ``>`` *or* ``<``, so no ``<`` is scanned past by more
    than one attempt (``<[^>]+>`` rescanned the rest of the page from every ``<``
    of an unclosed run: 25 s for 64 KiB of them, with every thread blocked).
    """
    import re

    opening = re.search(r"<title[^<>]*>", text, re.IGNORECASE)
    if opening is not None:
        closing = re.compile(r"</title", re.IGNORECASE).search(text, opening.end())
        if closing is not None:
            title = " ".join(text[opening.end() : closing.start()].split())
            if title:
                return title[:200]
    return " ".join(re.sub(r"<[^<>]*>", " ", text).split())[:200]


def _find_message(obj: Any) -> Optional[str]:
    # Providers nest the message differently: {"error": {"message"}}, {"message"},
    # {"error": "text"}, [{"error": {...}}] (Gemini's list form).
    if isinstance(obj, list) and obj:
        return _find_message(obj[0])
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, str):
        return err
    if isinstance(err, dict):
        found = _find_message(err)
        if found:
            return found
    for key in ("message", "detail", "Message"):
        if isinstance(obj.get(key), str):
            return str(obj[key])
    return None


def read_chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives, decoded, in pieces of at most 64 KiB.

    One item per HTTP chunk or per socket read (``iter_content(None)`` on a response
    without chunked encoding would wait for the whole body; ``read1`` returns
    whatever the socket has); a larger HTTP chunk is split. A gzip or deflate body
    is inflated here, 64 KiB at a time, rather than by urllib3, which inflates a
    whole chunk or read at once: a 1 MiB chunk of a compression bomb became 1 GiB
    before any framer could apply its event limit. So the framers' limits hold for
    decoded bytes, whatever the encoding.
    """
    raw = resp.raw
    inflate = _inflater(resp.headers.get("content-encoding"))
    source: Iterable[bytes]
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        source = raw.read_chunked(_PIECE, decode_content=False)
    else:
        read1 = getattr(raw, "read1", None)
        source = _reads_urllib3_v1(raw) if read1 is None else _reads(read1)
    if inflate is None:
        yield from source
        return
    for data in source:
        yield from inflate.feed(data)


def _reads_urllib3_v1(raw: Any) -> Iterator[bytes]:
    """``_reads`` for urllib3 1.x (Python 3.9 with botocore), which has no ``read1``.

    Its ``stream(n)`` waits for n bytes of a body without chunked encoding (HTTP/1.0,
    ``Connection: close``), holding back events that have arrived. The http.client
    response under it has ``read1``; urllib3's error translation (to ``ProtocolError``
    and ``ReadTimeoutError``) and its release of the connection still wrap each read.
    """
    import http.client

    fp = raw._fp
    while True:
        with raw._error_catcher():
            data = fp.read1(_PIECE)
            if not data and fp.length:  # the body ended short of its Content-Length
                raise http.client.IncompleteRead(b"", fp.length)
        if not data:
            return
        yield data


def _reads(read1: Callable[..., bytes]) -> Iterator[bytes]:
    while True:
        data = read1(_PIECE, decode_content=False)
        if not data:
            return
        yield data


def _inflater(coding: Optional[str]) -> Optional[_Inflate]:
    """The decoder for a ``Content-Encoding``; None for an identity body."""
    name = (coding or "").strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return _Inflate(gzip=name != "deflate")
    raise StreamReadError(
        f"the server sent the body with Content-Encoding {coding!r}, which llm_sync did not "
        "ask for and does not read (it asks for gzip or deflate, whose decoded size it can bound)"
    )


class _Inflate:
    """gzip or deflate, inflated at most ``_PIECE`` bytes at a time."""

    __slots__ = ("_gzip", "_obj", "_head", "_members", "_done")

    def __init__(self, *, gzip: bool) -> None:
        self._gzip = gzip
        self._obj: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        # deflate is zlib-wrapped as the RFC says, or raw as some servers send it: the
        # first two bytes tell, so they are held until both arrived.
        self._head = b""
        self._members = 0  # gzip members decoded to their end
        self._done = False  # the encoded stream ended; whatever follows is ignored

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            cmf, flg = data[0], data[1]
            wrapped = cmf & 0x0F == 8 and (cmf * 256 + flg) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        pending = False  # the bound cut the last output short: more may be waiting
        while (data or pending) and not self._done:
            obj = self._obj
            try:
                out = obj.decompress(data, _PIECE)
            except zlib.error as exc:
                if self._members:
                    # Bytes after a whole gzip member that start no other: ignored, as
                    # urllib3 and browsers do.
                    self._done = True
                    return
                raise StreamReadError(
                    f"the body's {'gzip' if self._gzip else 'deflate'} encoding is corrupt ({exc})"
                ) from None
            pending = len(out) == _PIECE
            if out:
                yield out
            if obj.eof:
                data, pending = obj.unused_data, False
                if not self._gzip:
                    self._done = True
                    return
                self._members += 1
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a next member, if any
            else:
                data = obj.unconsumed_tail


def _prepare(
    transport: Transport,
    session: requests.Session,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: Optional[bytes],
) -> requests.PreparedRequest:
    """What ``Session.request`` would send, without its per-request environment lookups.

    The session's headers, cookies and hooks apply as usual. A ``~/.netrc`` entry does
    not: every provider sends its own credentials, and requests would let a netrc
    password replace them.

    Preparing parses the URL and validates every header (about 30 µs, twice that on a
    reader thread's cold core, all of it before the first byte is sent), and the
    result is the same for every request of a conversation but for the body. So the
    first request with a given method, URL and headers is kept, without its body, as
    a template that later ones copy. Not while the session holds cookies: they change
    with every answer.
    """
    if not body or type(body) is not bytes or len(session.cookies):
        return _prepared(session, method, url, headers, body)
    key = (method, url, *headers.items())
    templates = transport._templates
    template = templates.get(key)
    if template is None:
        template = _prepared(session, method, url, headers, body)
        template.body = None  # a template must not keep a large body alive
        if len(templates) >= _MAX_TEMPLATES:
            templates.clear()
        templates[key] = template
    prepared = template.copy()
    # What PreparedRequest.prepare_body does for a bytes body.
    prepared.body = body
    prepared.headers["Content-Length"] = str(len(body))
    return prepared


def _prepared(
    session: requests.Session, method: str, url: str, headers: Mapping[str, str], body: Optional[bytes]
) -> requests.PreparedRequest:
    from requests import PreparedRequest
    from requests.structures import CaseInsensitiveDict

    merged: CaseInsensitiveDict[Union[str, bytes]] = CaseInsensitiveDict(session.headers)
    merged.update(headers)
    prepared = PreparedRequest()
    prepared.prepare(
        method=method,
        url=url,
        headers=merged,
        data=body,
        cookies=session.cookies.copy() if len(session.cookies) else None,
        hooks=session.hooks,
    )
    return prepared


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _reason(exc: BaseException) -> str:
    """The OS's words ("Connection refused") from the OSError urllib3 wraps a few levels deep."""
    inner: Optional[BaseException] = exc
    for _ in range(8):  # the wrapping is shallow; the bound guards against odd chains
        if inner is None:
            break
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror
        # requests wraps in args[0], urllib3's MaxRetryError in .reason, others chain.
        wrapped = inner.args[0] if inner.args else None
        reason = getattr(inner, "reason", None)
        inner = next(
            (e for e in (inner.__cause__, inner.__context__, wrapped, reason) if isinstance(e, BaseException)),
            None,
        )
    return str(exc)


def from_requests(exc: Exception, content: bool) -> LlmError:
    """The typed error for a failure while reading a 2xx body (``content``: some already reached the caller)."""
    import requests

    if isinstance(exc, (requests.exceptions.ReadTimeout, TimeoutError)) or (
        isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc)
    ):
        return RequestTimeoutError(
            "the server sent nothing for longer than the socket read timeout", phase="idle"
        )
    if isinstance(exc, (requests.exceptions.RequestException, OSError)) or _is_urllib3_error(exc):
        text = f"{type(exc).__name__}: {exc}"
        if content:
            return StreamInterruptedError(f"the connection broke in the middle of the stream ({text})")
        return NetworkError(f"the connection broke before any content arrived ({text})")
    return internal_error(exc)


def _is_urllib3_error(exc: Exception) -> bool:
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ValueError)) and "urllib3" in type(
        exc
    ).__module__
