"""The client's machinery: errors, the route table's row, a request's description, operations.

Each API method is written once, as a generator that yields ``Call`` objects (what to send) and
receives each answer parsed (sans-I/O). ``operation`` turns such a generator into a plain method
on ``PresenceClient`` and a coroutine method on ``AsyncPresenceClient``: the two clients differ
only in how they send a ``Call`` (``_SyncDriver`` and ``_AsyncDriver`` in ``_drivers``).
"""

from __future__ import annotations

import functools
import inspect
import mimetypes
import os
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pydantic import BaseModel, TypeAdapter

from presence.framework.errors import PresenceError
from presence.service.errors import describe

if TYPE_CHECKING:
    from presence.service.client._drivers import _AsyncDriver, _SyncDriver

P = ParamSpec("P")
R = TypeVar("R")

Upload = str | os.PathLike[str] | bytes | IO[bytes]
"""A file to upload: a path, its bytes, or a binary file object."""


class PresenceAPIError(PresenceError):
    """The service refused a request (4xx) or failed (5xx).

    Attributes:
        status_code: The HTTP status.
        error: The service's reason, one sentence naming the field or resource at fault.
        detail: The service's ``detail``: a sentence, or for a 422 the list of field errors.
        method: The request's method.
        path: The request's path.
    """

    def __init__(self, status_code: int, detail: Any, method: str, path: str, error: str = ""):
        self.status_code, self.detail, self.method, self.path = status_code, detail, method, path
        self.error = error or describe(detail)
        super().__init__(f"{method} {path} answered {status_code}: {self.error}")


class ServiceUnreachable(PresenceError):
    """No presence service answered at the client's URL."""


@dataclass(frozen=True)
class Endpoint:
    """One route a client method calls.

    Attributes:
        method: HTTP method.
        path: Path template as in the OpenAPI description.
        body: Type of the JSON body (a model, a list or a union of them), if any.
        response: Type of the 200 answer; ``None`` for a 204 or a file download.
        query: Query parameters the method may send.
        form: Fields of a ``multipart/form-data`` body (``file`` is the upload).
        download: The 200 answer is a file of this media type, saved to disk.
    """

    method: str
    path: str
    body: Any = None
    response: Any = None
    query: tuple[str, ...] = ()
    form: tuple[str, ...] = ()
    download: str | None = None


@dataclass
class Call:
    """One request an operation wants sent; the driver answers with the parsed response.

    Attributes:
        endpoint: Name of the route in ``ENDPOINTS``.
        ids: Values of the path's ``{placeholders}``.
        json: The JSON body, already validated and dumped.
        query: Query parameters (``None`` values are left out).
        form: Text fields of a multipart body.
        file: ``(file name, bytes, media type)`` of a multipart upload.
        save_to: Where a download is written.
    """

    endpoint: str
    ids: dict[str, str] = field(default_factory=dict)
    json: Any = None
    query: dict[str, Any] = field(default_factory=dict)
    form: dict[str, str] | None = None
    file: tuple[str, bytes, str] | None = None
    save_to: Path | None = None


Op = Generator[Call, Any, R]
"""What an operation's generator is: yields calls, returns the method's result."""


class operation(Generic[P, R]):  # noqa: N801 - used as a decorator, like property
    """A method written once as an ``Op`` generator, bound to a sync or an async driver."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Op[R]]):
        self.fn = fn
        functools.update_wrapper(self, fn)
        whole = inspect.signature(fn)
        result = whole.return_annotation  # Op[X] (a string, annotations are postponed): X
        if isinstance(result, str) and result.startswith("Op[") and result.endswith("]"):
            result = result[3:-1]
        self.signature = whole.replace(
            parameters=list(whole.parameters.values())[1:], return_annotation=result
        )

    @overload
    def __get__(self, obj: None, owner: type) -> operation[P, R]: ...
    @overload
    def __get__(self, obj: _SyncDriver, owner: type) -> Callable[P, R]: ...
    @overload
    def __get__(self, obj: _AsyncDriver, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        method = obj._bind(self.fn)
        functools.update_wrapper(method, self.fn)
        method.__signature__ = self.signature
        del method.__wrapped__  # help() shows the signature without self
        return method


def body(kind: Any, given: Any, fields: dict[str, Any]) -> Any:
    """A request body validated by the service's own model(s), as JSON data.

    Args:
        kind: The body's type (a model, a list of models or a union).
        given: A ready value (a model, a list, a dict), or ``None``.
        fields: Keyword fields instead of ``given``.

    Raises:
        TypeError: Both ``given`` and ``fields``.
        pydantic.ValidationError: A misspelt or invalid field (it never leaves the client).
    """
    if given is not None and fields:
        raise TypeError("pass a request object or keyword fields, not both")
    checker = adapter(kind)
    value = checker.validate_python(given if given is not None else fields)
    # only what the caller set: the service applies its own defaults
    return checker.dump_python(value, mode="json", exclude_unset=True, by_alias=True)


@functools.cache
def adapter(kind: Any) -> TypeAdapter:
    """A (cached) pydantic adapter for a body or answer type."""
    return TypeAdapter(kind)


def query_value(value: Any) -> Any:
    """A query parameter as sent: times in ISO 8601, lists comma-separated."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    return value


def upload(file: Upload, file_name: str | None) -> tuple[str, bytes, str]:
    """``(name, bytes, media type)`` of a file to upload; a path names itself."""
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        data, name = path.read_bytes(), file_name or path.name
    elif isinstance(file, bytes | bytearray):
        data, name = bytes(file), file_name or "upload"
    else:
        data = file.read()
        name = file_name or Path(str(getattr(file, "name", "") or "upload")).name
    return name, data, mimetypes.guess_type(name)[0] or "application/octet-stream"


def dump(model: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A model's fields as the service takes them."""
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json", exclude_unset=True, by_alias=True)
    return model
