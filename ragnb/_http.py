"""A small JSON-over-HTTP client for OpenAI-compatible servers, on the standard library only.

    client = Client("http://127.0.0.1:8080/v1", api_key=None, timeout=60)
    client.get_json("/models")                        # {"data": [...]}
    client.post_json("/embeddings", {"input": [...]}) # parsed JSON answer
    for event in client.post_events("/chat/completions", body): ...   # SSE "data:" payloads

Every failure is one :class:`ragnb.errors.ModelError` sentence naming the server and the fix:
server down, no answer within the timeout, 4xx/5xx (with the server's own message), a
connection that closes mid-answer. 429 and 503 are retried with backoff before giving up.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ragnb.errors import InputError, ModelError

RETRY_STATUS = (429, 503)
MAX_RETRY_WAIT = 10.0  # seconds: a Retry-After beyond this is capped


def check_base_url(base_url: str) -> str:
    """`base_url` without a trailing slash, or InputError if it is not an http(s) URL.

    >>> check_base_url("http://127.0.0.1:8080/v1/")
    'http://127.0.0.1:8080/v1'
    """
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise InputError(
            f"base_url must be an http(s) URL such as 'http://127.0.0.1:8080/v1', got {base_url!r}"
        )
    if not urlsplit(base_url).hostname:
        raise InputError(f"base_url {base_url!r} names no host")
    return base_url.rstrip("/")


def _server_message(body: bytes) -> str:
    """The error text a server put in its JSON body (OpenAI: {"error": {"message": ...}})."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or error
    return " ".join(str(error).split())[:200]


class Client:
    """One OpenAI-compatible server: `base_url` ends in /v1 for most servers.

    Args:
        base_url: e.g. "http://127.0.0.1:8080/v1".
        api_key: sent as ``Authorization: Bearer``; None sends none.
        timeout: seconds to wait for the connection and for each piece of an answer.
        retries: extra attempts after a 429 or 503, waiting 0.5 s, 1 s, 2 s, ... in between.
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3
    ):
        self.base_url = check_base_url(base_url)
        parts = urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path  # "/v1"
        self.api_key = api_key
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self.retries = retries

    @property
    def root(self) -> str:
        """The server's address without the API prefix ("http://host:port")."""
        return self.base_url[: len(self.base_url) - len(self._prefix)]

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream"}
        if body:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=self.timeout)

    def request(
        self, method: str, path: str, body: dict | None = None, *, root: bool = False
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request and return the open connection and its 2xx response.

        `path` is under base_url ("/models"), or under the server root when `root` is True.
        Raises ModelError for every failure; retries 429/503.
        """
        url = path if root else self._prefix + path
        payload = None if body is None else json.dumps(body).encode("utf-8")
        where = self.root + url
        for attempt in range(self.retries + 1):
            conn = self._connect()
            try:
                conn.request(method, url, body=payload, headers=self._headers(body is not None))
                response = conn.getresponse()
            except ConnectionRefusedError as exc:
                conn.close()
                raise ModelError(
                    f"no model server answers at {self.base_url} (connection refused): "
                    f"start the server or check base_url"
                ) from exc
            except TimeoutError as exc:
                conn.close()
                raise ModelError(
                    f"the model server at {self.base_url} did not answer within "
                    f"{self.timeout:g} s: check that it is running, or raise timeout="
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise ModelError(
                    f"cannot talk to the model server at {self.base_url} "
                    f"({type(exc).__name__}: {exc}): check base_url and that the server is up"
                ) from exc
            except BaseException:  # Ctrl-C while connecting: drop the request
                conn.close()
                raise
            if 200 <= response.status < 300:
                return conn, response
            message = _server_message(_read_quietly(response))
            retry_after = response.getheader("Retry-After")
            conn.close()
            if response.status in RETRY_STATUS and attempt < self.retries:
                time.sleep(_backoff(attempt, retry_after))
                continue
            raise ModelError(_status_error(response.status, response.reason, where, message))
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, *, root: bool = False) -> Any:
        """GET `path` and parse its JSON answer."""
        conn, response = self.request("GET", path, root=root)
        return self._json(conn, response)

    def post_json(self, path: str, body: dict, *, root: bool = False) -> Any:
        """POST `body` as JSON to `path` and parse the JSON answer."""
        conn, response = self.request("POST", path, body, root=root)
        return self._json(conn, response)

    def _json(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> Any:
        try:
            raw = self._read(response)
        finally:
            conn.close()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ModelError(
                f"the model server at {self.base_url} answered something that is not JSON "
                f"({raw[:80]!r}): is base_url the OpenAI-compatible API (often ending in /v1)?"
            ) from exc

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        with self._answering("stopped answering for {timeout} s"):
            return response.read()

    @contextlib.contextmanager
    def _answering(self, silence: str) -> Iterator[None]:
        """Turn a read that times out or loses the connection into one ModelError line;
        `silence` says what a timeout looked like ("{timeout}" is filled in)."""
        try:
            yield
        except TimeoutError as exc:
            quiet = silence.format(timeout=f"{self.timeout:g}")
            raise ModelError(
                f"the model server at {self.base_url} {quiet}: check the server, or raise timeout="
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ModelError(
                f"the model server at {self.base_url} closed the connection mid-answer "
                f"({type(exc).__name__}): check the server's log and try again"
            ) from exc

    def post_events(self, path: str, body: dict) -> Iterator[Any]:
        """POST `body` and yield the parsed JSON of each server-sent ``data:`` event.

        Comment lines (``: keepalive``), ``event:``/``id:`` lines and blank lines are skipped;
        ``data: [DONE]`` ends the stream. Closing the iterator closes the connection, which
        tells the server to stop generating.
        """
        conn, response = self.request("POST", path, body)
        if (response.getheader("Content-Type") or "").startswith("application/json"):
            yield self._json(conn, response)  # a server that does not stream: one whole answer
            return
        try:
            data: list[str] = []
            while True:
                line = self._readline(response)
                if line is None:
                    raise ModelError(
                        f"the model server at {self.base_url} closed the connection "
                        f"mid-answer: check the server's log and try again"
                    )
                line = line.rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                    continue
                if line or not data:  # comments, other fields; or a blank line with no data
                    continue
                payload, data = "\n".join(data), []
                if payload.strip() == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError as exc:
                    raise ModelError(
                        f"the model server at {self.base_url} sent an event that is not JSON: "
                        f"{payload[:80]!r}"
                    ) from exc
                if isinstance(event, dict) and "error" in event:
                    raise ModelError(
                        f"the model server at {self.base_url} failed mid-answer: "
                        f"{_server_message(payload.encode())}"
                    )
                yield event
        finally:
            conn.close()

    def _readline(self, response: http.client.HTTPResponse) -> str | None:
        """The next line of a streamed answer; None when the server closed the connection."""
        with self._answering("sent nothing for {timeout} s mid-answer"):
            raw = response.readline()
        return raw.decode("utf-8", errors="replace") if raw else None


def _read_quietly(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read(4096)
    except (OSError, http.client.HTTPException):
        return b""


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before retry `attempt` (0-based): Retry-After when given, else doubling.

    >>> _backoff(0, None), _backoff(2, None), _backoff(0, "3")
    (0.5, 2.0, 3.0)
    """
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_WAIT)
        except ValueError:
            pass
    return min(0.5 * 2**attempt, MAX_RETRY_WAIT)


def _status_error(status: int, reason: str, where: str, message: str) -> str:
    detail = f": {message}" if message else ""
    if status in (401, 403):
        fix = "set OPENAI_API_KEY or pass api_key="
    elif status == 404:
        fix = "check base_url (it usually ends in /v1) and the model name"
    elif status in RETRY_STATUS:
        fix = "the server is busy; try again later"
    elif status < 500:
        fix = "check the model name and options"
    else:
        fix = "check the server's log"
    return f"the model server answered {status} {reason} for {where}{detail}; {fix}"
