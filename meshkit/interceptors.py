"""Server interceptors shared by every service: errors, metrics and request ids.

The error interceptor wraps each method handler (not just ``intercept_service``)
because a bare ``intercept_service`` never sees the exceptions a handler raises.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from meshkit import errors, metrics

log = logging.getLogger("meshkit.interceptors")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

REQUEST_ID_HEADER = "x-request-id"


def _split_method(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2)
    return service, method


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str:
    for item_key, value in details.invocation_metadata or ():
        if item_key == key:
            return value if isinstance(value, str) else value.decode()
    return ""


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Turn service errors into rich statuses, count and time every call, carry request ids."""

    def __init__(self, domain: str, guard: Any = None) -> None:
        self.domain = domain
        # A meshkit.access.Guard (typed loosely: access imports this module's neighbours).
        self.guard = guard

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        full_method = handler_call_details.method
        service, method = _split_method(full_method)
        request_id = _metadata_value(handler_call_details, REQUEST_ID_HEADER) or uuid.uuid4().hex
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(
                    handler.unary_unary, full_method, service, method, "unary", request_id
                ),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(
                    handler.unary_stream, full_method, service, method, "server_stream", request_id
                ),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(
                    handler.stream_stream, full_method, service, method, "bidi_stream", request_id
                ),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(
                    handler.stream_unary, full_method, service, method, "client_stream", request_id
                ),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    async def _fail(
        self, context: grpc.aio.ServicerContext, error: BaseException, where: str
    ) -> None:
        if isinstance(error, errors.ServiceError):
            status = errors.to_status(error, self.domain)
        elif isinstance(error, NotImplementedError):
            status = errors.to_status(
                errors.Unimplemented(f"{where} is not implemented"), self.domain
            )
        else:
            log.error("unexpected error in %s", where, exc_info=error)
            status = errors.internal_status(self.domain)
        wire = rpc_status.to_status(status)
        trailing = tuple(wire.trailing_metadata or ())
        if not getattr(error, "retryable", True):
            trailing += (errors.NO_RETRY_METADATA,)
        await context.abort(wire.code, wire.details, trailing)

    def _wrap_unary(
        self,
        behavior: Any,
        full_method: str,
        service: str,
        method: str,
        kind: str,
        request_id: str,
    ) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = request_id_var.set(request_id)
            caller = None
            started = time.perf_counter()
            metrics.GRPC_STARTED.labels(kind, service, method).inc()
            code = grpc.StatusCode.OK
            try:
                if self.guard is not None:
                    caller = self.guard.enter(full_method, context)
                return await behavior(request, context)
            except errors.ServiceError as e:
                code = e.code
                await self._fail(context, e, method)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except NotImplementedError as e:
                code = grpc.StatusCode.UNIMPLEMENTED
                await self._fail(context, e, method)
            except Exception as e:
                code = grpc.StatusCode.INTERNAL
                await self._fail(context, e, method)
            finally:
                metrics.observe_handled(kind, service, method, code, time.perf_counter() - started)
                if caller is not None:
                    self.guard.leave(caller)
                request_id_var.reset(token)

        return wrapper

    def _wrap_stream(
        self,
        behavior: Any,
        full_method: str,
        service: str,
        method: str,
        kind: str,
        request_id: str,
    ) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = request_id_var.set(request_id)
            caller = None
            started = time.perf_counter()
            metrics.GRPC_STARTED.labels(kind, service, method).inc()
            code = grpc.StatusCode.OK
            try:
                if self.guard is not None:
                    caller = self.guard.enter(full_method, context)
                async for response in behavior(request, context):
                    yield response
            except errors.ServiceError as e:
                code = e.code
                await self._fail(context, e, method)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as e:
                code = grpc.StatusCode.INTERNAL
                await self._fail(context, e, method)
            finally:
                metrics.observe_handled(kind, service, method, code, time.perf_counter() - started)
                # A cancelled stream may be closed from another task's context.
                with contextlib.suppress(ValueError):
                    if caller is not None:
                        self.guard.leave(caller)
                with contextlib.suppress(ValueError):
                    request_id_var.reset(token)

        return wrapper
