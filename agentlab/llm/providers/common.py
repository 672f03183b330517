"""What both provider adapters share: one SDK call's error handling, retry-after parsing, status → typed error.

The agent's recovery handler decides by error *type* (transient or not, ``retry_after``), never by
message text, so every provider failure must become exactly one :class:`~agentlab.errors.ModelError`.
The mapping lives here once, and so does the shape of a call (:func:`sdk_call`); each adapter only
extracts (status, provider error type, message, headers) from its own SDK's exception.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import pydantic

from agentlab.errors import (
    AuthError,
    BadRequest,
    InputError,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    NotFound,
    Overloaded,
    ProviderServerError,
    RateLimited,
    ReplayMismatch,
)

MAX_DETAIL_CHARS = 300


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after`` (seconds or date).

    An HTTP-date is read relative to the response's own ``date`` header, not the local clock, so the
    answer is the same under simulation as live; without a ``date`` header it is unknown (None).
    """
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            seconds = _http_date_delta(value, headers.get("date"))
        if seconds is not None and seconds >= 0:
            return seconds
    return None


def _http_date_delta(value: str, now: str | None) -> float | None:
    if now is None:
        return None
    try:
        then, base = email.utils.parsedate_to_datetime(value), email.utils.parsedate_to_datetime(now)
    except (TypeError, ValueError):
        return None
    return max((then - base).total_seconds(), 0.0)


def error_detail(body: object) -> tuple[str | None, str]:
    """(provider error type, message) from an error body: OpenAI, Anthropic and OpenRouter shapes."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        text = body if isinstance(body, str) else ""
        return None, text[:MAX_DETAIL_CHARS]
    code = error.get("code")
    kind = error.get("type") or (code if isinstance(code, str) else None)  # OpenRouter's code is the status
    message = str(error.get("message") or "")
    raw = (error.get("metadata") or {}).get("raw") if isinstance(error.get("metadata"), Mapping) else None
    if isinstance(raw, str) and raw and raw not in message:
        message = f"{message} ({raw})" if message else raw  # OpenRouter puts the upstream's words here
    return (str(kind) if kind is not None else None), message[:MAX_DETAIL_CHARS]


def status_error(
    provider: str, status: int | None, kind: str | None, message: str, headers: Mapping[str, str] | None
) -> ModelError:
    """The agentlab error for an HTTP error status (or an error event inside a 200 stream: status None)."""
    label = " ".join(str(p) for p in (provider, status, kind) if p is not None)
    text = f"{label}: {message}" if message else label
    if kind == "overloaded_error" or status == 529:
        return Overloaded(text)
    if kind in ("insufficient_quota", "billing_error"):
        # OpenAI sends an exhausted quota as a 429: waiting will not fix it, so it is not RateLimited.
        return AuthError(text)
    if status == 429 or kind in ("rate_limit_error", "rate_limit_exceeded"):
        return RateLimited(text, retry_after=retry_after_s(headers))
    if status == 408 or kind == "timeout_error":
        return ModelTimeout(text)
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return AuthError(text)
    if status == 404 or kind == "not_found_error":
        return NotFound(text)
    if status is None or status >= 500 or status == 409:
        # 409 is a lock timeout the SDKs themselves retry; a stream's error event is the server's.
        return ProviderServerError(text)
    return BadRequest(text)  # 400, 413, 422 and any other 4xx: the request itself is wrong


def attempts_from_request(request: Any) -> int | None:
    """HTTP attempts the SDK made, read from its ``x-stainless-retry-count`` header on the last request.

    Both SDKs stamp every attempt with that header, so the last request tells how many were made,
    whatever transport or http client the caller plugged in.
    """
    headers = getattr(request, "headers", None)
    value = headers.get("x-stainless-retry-count") if headers is not None else None
    try:
        return int(value) + 1 if value is not None else None
    except ValueError:
        return None


def with_attempts(error: ModelError, attempts: int | None) -> ModelError:
    """``error`` carrying the HTTP attempts the SDK made for the failed call (1 if none is known)."""
    error.attempts = attempts or 1
    return error


def root_cause(err: BaseException) -> str:
    """``Type: message`` of the innermost cause, so 'Connection error.' says what actually broke."""
    inner = err
    while inner.__cause__ is not None and inner.__cause__ is not inner:
        inner = inner.__cause__
    return "" if inner is err else f"{type(inner).__name__}: {inner}".replace("\n", " ")[:MAX_DETAIL_CHARS]


T = TypeVar("T")


class StreamRequired(Exception):
    """The SDK refused to send a call unstreamed (before sending anything); the adapter resends it as a stream.

    Only an adapter's ``send`` raises it, and :func:`sdk_call` lets it through to that adapter.
    """


# Not provider failures: a replay miss and a broken cassette end the run (the CLI's one line), and
# StreamRequired is the adapter's own signal. Everything else becomes a ModelError.
_PASS_THROUGH = (ReplayMismatch, InputError, StreamRequired)


class CountsAttempts(Protocol):
    last_attempts: int | None


async def sdk_call(
    owner: CountsAttempts,
    provider: str,
    send: Callable[[], Awaitable[Any]],
    read: Callable[[Any], Awaitable[T]],
    sdk_error: type[Exception],
    map_error: Callable[[Any], ModelError],
) -> tuple[T, int | None]:
    """One request through an SDK's ``with_raw_response``, every way it can fail turned into one ModelError.

    ``send`` makes the request (the SDK's own retries happen inside it) and ``read`` turns the raw response
    into the result. Returns the result and the HTTP attempts the SDK made, which a raised error carries
    instead; ``owner.last_attempts`` is set either way (None if nothing was sent).
    """
    attempts: int | None = None
    raw: Any = None
    try:
        raw = await send()
        attempts = raw.retries_taken + 1
        return await read(raw), attempts
    except sdk_error as err:
        attempts = attempts_from_request(getattr(err, "request", None)) or attempts
        raise with_attempts(map_error(err), attempts) from err
    except (json.JSONDecodeError, pydantic.ValidationError) as err:
        error = MalformedResponse(f"{provider}: undecodable response body ({err})"[:MAX_DETAIL_CHARS])
        raise with_attempts(error, attempts) from err
    except ModelError as err:  # the adapter's own, from ``read``: a 200 whose body is an error, or is empty
        with_attempts(err, attempts)
        raise
    except _PASS_THROUGH:
        raise
    except Exception as err:
        # Nothing else may leave an adapter: a shape the conversion did not expect (AttributeError,
        # TypeError, KeyError …) is a malformed answer; an exception before any answer came (the SDK
        # refusing its arguments) is a bad request. The original stays chained as the cause.
        what = f"{type(err).__name__}: {err}".replace("\n", " ")
        error: ModelError
        if raw is None:
            error = BadRequest(f"{provider}: the request could not be sent ({what})"[:MAX_DETAIL_CHARS])
        else:
            error = MalformedResponse(f"{provider}: unexpected response shape ({what})"[:MAX_DETAIL_CHARS])
        raise with_attempts(error, attempts) from err
    finally:
        owner.last_attempts = attempts
