"""JSON to request message and response message to JSON, driven by the descriptors.

Input follows ``json_format.Parse`` semantics (proto or JSON field names, enums by
name or number, RFC 3339 times) with unknown fields rejected, plus one generic rule
for ``google.type.Decimal`` (as grpc-gateway treats well-known types): a decimal
field takes a JSON number or a numeric string, and the number's exact text reaches
the backend (the body is parsed with ``parse_float=Decimal``, so ``0.1`` stays
``"0.1"``). Output is ``MessageToDict`` with proto field names, every field printed,
and each decimal rendered as a string.

Every bad value becomes one :class:`~meshkit.errors.FieldViolation` named by the
JSON path the client sent (``risk_limits.max_slippage``, ``target_exchange_ids[0]``).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from google.protobuf import descriptor, field_mask_pb2, json_format, message, message_factory
from multidict import MultiMapping

from gateway.errors import invalid_argument
from gateway.routes import Route, is_map, is_scalar_like, message_type_of
from meshkit.errors import FieldViolation

DECIMAL = "google.type.Decimal"
FIELD_MASK = "google.protobuf.FieldMask"
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+\Z")
# Digits allowed before and after the point of a decimal; far beyond any price or quantity.
MAX_DECIMAL_PLACES = 36
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})
_FAILED_PREFIX = re.compile(r"^(?:Failed to parse \w+ field: )+")
_AT_SUFFIX = re.compile(r"\s+at\s+[\w.\[\]]+\.*\s*$")

Violations = list[FieldViolation]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_json_native(message_type: descriptor.Descriptor) -> bool:
    """Well-known types with their own JSON form (Timestamp, Struct, wrappers...)."""
    name = message_type.full_name
    return name.startswith("google.protobuf.") and name != FIELD_MASK


def _field_named(
    message_type: descriptor.Descriptor,
    key: str,
) -> descriptor.FieldDescriptor | None:
    found = message_type.fields_by_name.get(key)
    if found is not None:
        return found
    for candidate in message_type.fields:
        if candidate.json_name == key:
            return candidate
    return None


def _parse_reason(error: Exception) -> str:
    text = _FAILED_PREFIX.sub("", str(error).strip())
    text = _AT_SUFFIX.sub("", text).rstrip(". ")
    return text or "invalid value"


# ----------------------------------------------------------------------------- JSON text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def load_json(raw: bytes) -> Any:
    """Parse a request body exactly: decimals stay ``Decimal``, no NaN, no duplicate keys.

    Raises
    ------
    HttpError
        400 ``MALFORMED_JSON`` when the body is not valid UTF-8 JSON.
    """
    try:
        return json.loads(
            raw.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = str(e) if not isinstance(e, RecursionError) else "nested too deeply"
        raise invalid_argument(
            [FieldViolation("", f"the request body is not valid JSON: {reason}")],
            reason="MALFORMED_JSON",
        ) from None


# ----------------------------------------------------------------------------- decimals


def decimal_text(value: Any, path: str, violations: Violations) -> str | None:
    """Return the canonical text of a decimal given as a JSON number or a numeric string."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        violations.append(FieldViolation(path, "must be a number or a numeric string"))
        return None
    if isinstance(value, str):
        if not _DECIMAL_TEXT.match(value):
            violations.append(FieldViolation(path, f"is not a decimal number: {_short(value)}"))
            return None
        number = Decimal(value)
    else:
        number = Decimal(value)
    exponent = number.as_tuple().exponent
    if not number.is_finite() or not isinstance(exponent, int):
        violations.append(FieldViolation(path, "must be a finite number"))
        return None
    if number and (number.adjusted() >= MAX_DECIMAL_PLACES or exponent < -MAX_DECIMAL_PLACES):
        violations.append(
            FieldViolation(
                path,
                f"has more than {MAX_DECIMAL_PLACES} digits before or after the point",
            ),
        )
        return None
    return format(number, "f")


def _field_mask_json(value: Any, path: str, violations: Violations) -> str | None:
    if isinstance(value, str):
        paths = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        paths = [p.strip() for p in value if p.strip()]
    else:
        violations.append(FieldViolation(path, "must be a comma-separated string of field paths"))
        return None
    snake = [
        ".".join(re.sub(r"(?<!^)(?=[A-Z])", "_", part).lower() for part in p.split("."))
        for p in paths
    ]
    try:
        return field_mask_pb2.FieldMask(paths=snake).ToJsonString()
    except ValueError as e:
        violations.append(FieldViolation(path, _parse_reason(e)))
        return None


# ----------------------------------------------------------------------------- body walk


def _plain(value: Any) -> Any:
    """Turn parsed JSON back into what ``json_format`` expects: decimals become floats."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_leaf(
    field_descriptor: descriptor.FieldDescriptor,
    wrapped: Any,
    path: str,
    violations: Violations,
) -> None:
    containing_type = field_descriptor.containing_type
    assert containing_type is not None, "a field of a parsed message belongs to a message"
    container = message_factory.GetMessageClass(containing_type)()
    try:
        json_format.ParseDict({field_descriptor.name: wrapped}, container)
    except (json_format.ParseError, TypeError, ValueError, OverflowError) as e:
        violations.append(FieldViolation(path, _parse_reason(e)))


def _single_in(
    value: Any,
    field_descriptor: descriptor.FieldDescriptor,
    path: str,
    violations: Violations,
    wrap: Any,
    null_clears: bool = False,
) -> Any:
    message_type = field_descriptor.message_type
    if value is None:
        return None
    if message_type is not None and message_type.full_name == DECIMAL:
        text = decimal_text(value, path, violations)
        return None if text is None else {"value": text}
    if message_type is not None and message_type.full_name == FIELD_MASK:
        return _field_mask_json(value, path, violations)
    if message_type is not None and not _is_json_native(message_type):
        return message_in(value, message_type, path, violations, null_clears=null_clears)
    plain = _plain(value)
    _check_leaf(field_descriptor, wrap(plain), path, violations)
    return plain


def _field_in(
    value: Any,
    field_descriptor: descriptor.FieldDescriptor,
    path: str,
    violations: Violations,
    null_clears: bool = False,
) -> Any:
    if value is None:
        # A field with presence (a message, an ``optional`` scalar) is simply not set by null.
        # On one without, null would silently become the default ("" or 0 or false), which
        # can mean something (an empty config_id once meant "every configuration"): refused,
        # unless the request is a PATCH whose null asks to reset the field.
        if not field_descriptor.has_presence and not null_clears:
            violations.append(
                FieldViolation(path, "must not be null (leave the field out for its default)"),
            )
        return None
    if is_map(field_descriptor):
        if not isinstance(value, dict):
            violations.append(FieldViolation(path, "must be a JSON object"))
            return None
        value_field = message_type_of(field_descriptor).fields_by_name["value"]
        result: dict[str, Any] = {}
        for key, item in value.items():
            child = f"{path}[{json.dumps(key)}]"
            if item is None:
                violations.append(FieldViolation(child, "must not be null"))
                continue
            if value_field.message_type is None or _is_json_native(value_field.message_type):
                plain = _plain(item)
                _check_leaf(field_descriptor, {key: plain}, child, violations)
                result[key] = plain
            else:
                _check_leaf(field_descriptor, {key: {}}, child, violations)  # the key's type
                result[key] = _single_in(
                    item,
                    value_field,
                    child,
                    violations,
                    lambda v: v,
                    null_clears,
                )
        return result
    if field_descriptor.is_repeated:
        if not isinstance(value, list):
            violations.append(FieldViolation(path, "must be a JSON array"))
            return None
        items = []
        for index, item in enumerate(value):
            child = f"{path}[{index}]"
            if item is None:
                violations.append(FieldViolation(child, "must not be null"))
                continue
            items.append(
                _single_in(item, field_descriptor, child, violations, lambda v: [v], null_clears),
            )
        return items
    return _single_in(value, field_descriptor, path, violations, lambda v: v, null_clears)


def message_in(
    value: Any,
    message_type: descriptor.Descriptor,
    path: str,
    violations: Violations,
    *,
    null_clears: bool = False,
) -> dict[str, Any] | None:
    """Check a JSON object against ``message_type``; return it keyed by proto field names.

    Unknown fields, fields given twice (``config_id`` and ``configId``) and values of the
    wrong type become violations; decimals become ``{"value": "<exact text>"}``. A null
    leaves a field with presence unset; on a field without presence it is a violation,
    unless ``null_clears`` (a PATCH whose update mask comes from the body: null resets).
    """
    if not isinstance(value, dict):
        violations.append(FieldViolation(path or "(body)", "must be a JSON object"))
        return None
    result: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        field_descriptor = _field_named(message_type, key)
        if field_descriptor is None:
            violations.append(FieldViolation(child, "unknown field"))
            continue
        if field_descriptor.name in given_as:
            violations.append(
                FieldViolation(
                    child,
                    f"is given twice (also as {given_as[field_descriptor.name]!r})",
                ),
            )
            continue
        given_as[field_descriptor.name] = key
        result[field_descriptor.name] = _field_in(
            item,
            field_descriptor,
            child,
            violations,
            null_clears,
        )
    return result


# ----------------------------------------------------------------------------- path and query


_FLOAT_TYPES = (descriptor.FieldDescriptor.TYPE_DOUBLE, descriptor.FieldDescriptor.TYPE_FLOAT)
_INTEGER_TYPES = (
    descriptor.FieldDescriptor.CPPTYPE_INT32,
    descriptor.FieldDescriptor.CPPTYPE_INT64,
    descriptor.FieldDescriptor.CPPTYPE_UINT32,
    descriptor.FieldDescriptor.CPPTYPE_UINT64,
)
WRAPPERS = frozenset(
    {
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)


def _coerce(text: str, field_descriptor: descriptor.FieldDescriptor) -> tuple[Any, str]:
    """Return (JSON value, "") or (None, why it is not a value of the field's type)."""
    message_type = field_descriptor.message_type
    kind = field_descriptor.type
    value: Any = text
    if message_type is not None and message_type.full_name in (DECIMAL, FIELD_MASK):
        local: Violations = []
        if message_type.full_name == DECIMAL:
            decimal = decimal_text(text, "", local)
            value = None if decimal is None else {"value": decimal}
        else:
            value = _field_mask_json(text, "", local)
        return (value, "") if not local else (None, local[0].description)
    if message_type is not None and message_type.full_name in WRAPPERS:
        value, why = _coerce(text, message_type.fields_by_name["value"])
        if why:
            return None, why
    elif kind == descriptor.FieldDescriptor.TYPE_BOOL:
        if text not in _TRUE and text not in _FALSE:
            return None, f"{_short(text)} is not a boolean"
        value = text in _TRUE
    elif kind == descriptor.FieldDescriptor.TYPE_ENUM:
        value = int(text) if _INTEGER_TEXT.match(text) else text
    elif kind in _FLOAT_TYPES and not _DECIMAL_TEXT.match(text):
        return None, f"{_short(text)} is not a number"
    elif field_descriptor.cpp_type in _INTEGER_TYPES and not _INTEGER_TEXT.match(text):
        return None, f"{_short(text)} is not an integer"
    local = []
    _check_leaf(field_descriptor, [value] if field_descriptor.is_repeated else value, "", local)
    return (value, "") if not local else (None, local[0].description)


def coerce_text(
    text: str,
    field_descriptor: descriptor.FieldDescriptor,
    name: str,
    violations: Violations,
) -> Any:
    """Turn one path or query string into the JSON value of ``field_descriptor``'s type.

    Errors use grpc-gateway's wording: ``type mismatch, parameter: <name>, error: ...``.
    """
    value, why = _coerce(text, field_descriptor)
    if why:
        violations.append(FieldViolation(name, f"type mismatch, parameter: {name}, error: {why}"))
        return None
    return value


def _resolve_parameter(
    message_type: descriptor.Descriptor,
    name: str,
) -> tuple[tuple[str, ...], descriptor.FieldDescriptor] | str:
    """Resolve a dotted query name to proto field names, or return why it cannot be set."""
    current = message_type
    names: list[str] = []
    parts = name.split(".")
    for index, part in enumerate(parts):
        field_descriptor = _field_named(current, part)
        if field_descriptor is None:
            return "unknown field"
        names.append(field_descriptor.name)
        last = index == len(parts) - 1
        if last:
            if is_map(field_descriptor) or not is_scalar_like(field_descriptor):
                return "cannot be set in the query (it is not a scalar field)"
            return tuple(names), field_descriptor
        if (
            field_descriptor.is_repeated
            or is_scalar_like(field_descriptor)
            or _is_json_native(message_type_of(field_descriptor))
        ):
            return f"cannot be set in the query ({part!r} is not a message field)"
        current = message_type_of(field_descriptor)
    return "unknown field"


def _set_nested(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for name in path[:-1]:
        child = target.get(name)
        if not isinstance(child, dict):
            child = {}
            target[name] = child
        target = child
    target[path[-1]] = value


def query_in(query: MultiMapping[str], route: Route, violations: Violations) -> dict[str, Any]:
    """Read the query parameters that may set fields of ``route``'s request.

    With ``body: "*"`` no query parameter is accepted. Otherwise every field outside the
    body and the path may be set by its dotted name; repeated fields by repeated keys.
    """
    result: dict[str, Any] = {}
    message_type = route.method.input_type
    for name in dict.fromkeys(query.keys()):
        values = query.getall(name)
        if route.body == "*":
            violations.append(
                FieldViolation(
                    name,
                    "query parameters are not accepted here; send every field in the JSON body",
                )
            )
            continue
        resolved = _resolve_parameter(message_type, name)
        if isinstance(resolved, str):
            violations.append(FieldViolation(name, resolved))
            continue
        path, field_descriptor = resolved
        if path in route.path_field_paths:
            violations.append(FieldViolation(name, "is set by the path"))
            continue
        if route.body and path[0] == route.body:
            violations.append(FieldViolation(name, "is set by the body"))
            continue
        if not field_descriptor.is_repeated and len(values) > 1:
            violations.append(FieldViolation(name, "is given more than once"))
            continue
        coerced = [coerce_text(v, field_descriptor, name, violations) for v in values]
        _set_nested(result, path, coerced if field_descriptor.is_repeated else coerced[0])
    return result


def _field_at(
    message_type: descriptor.Descriptor,
    path: Sequence[str],
) -> descriptor.FieldDescriptor:
    current, found = message_type, None
    for name in path:
        found = current.fields_by_name[name]
        if found.message_type is not None:
            current = found.message_type
    assert found is not None
    return found


# ----------------------------------------------------------------------------- update mask


def derive_update_mask(
    body: Mapping[str, Any],
    message_type: descriptor.Descriptor,
    skip: frozenset[str],
) -> list[str]:
    """Return the field paths a PATCH body sets, as grpc-gateway derives them.

    Nested objects of message fields give their leaf paths (``risk_limits.max_slippage``);
    a map, a repeated field, a decimal, a well-known type or a null is one path; an empty
    object gives none. Top-level names in ``skip`` (path fields, the mask itself) are left out.
    """
    paths: list[str] = []

    def walk(node: Mapping[str, Any], current: descriptor.Descriptor, prefix: str) -> None:
        for key, value in node.items():
            field_descriptor = _field_named(current, key)
            if field_descriptor is None or (not prefix and field_descriptor.name in skip):
                continue
            path = prefix + field_descriptor.name
            message_type_ = field_descriptor.message_type
            if (
                isinstance(value, dict)
                and message_type_ is not None
                and not field_descriptor.is_repeated
                and message_type_.full_name != DECIMAL
                and message_type_.full_name != FIELD_MASK
                and not _is_json_native(message_type_)
            ):
                walk(value, message_type_, path + ".")
            else:
                paths.append(path)

    walk(body, message_type, "")
    return paths


# ----------------------------------------------------------------------------- request


def _has_update_mask(message_type: descriptor.Descriptor) -> bool:
    found = message_type.fields_by_name.get("update_mask")
    return bool(
        found is not None
        and found.message_type is not None
        and found.message_type.full_name == FIELD_MASK
        and not found.is_repeated,
    )


def build_request(
    route: Route,
    raw_body: bytes,
    query: MultiMapping[str],
    path_values: Mapping[tuple[str, ...], str],
) -> message.Message:
    """Build the request message of ``route`` from the body, the query and the path.

    Raises
    ------
    HttpError
        400 naming each bad field (malformed JSON, unknown field, type mismatch...).
    """
    violations: Violations = []
    message_type = route.method.input_type
    body_json: Any = None
    normalized: dict[str, Any] = {}
    # In a PATCH the body's fields become the update mask: there a null resets a field.
    null_clears = route.verb == "PATCH" and _has_update_mask(message_type)
    if route.body and raw_body.strip():
        body_json = load_json(raw_body)
        if route.body == "*":
            if not isinstance(body_json, dict):
                raise invalid_argument(
                    [FieldViolation("", "the request body must be a JSON object")],
                    reason="MALFORMED_JSON",
                )
            normalized = (
                message_in(
                    body_json,
                    message_type,
                    "",
                    violations,
                    null_clears=null_clears,
                )
                or {}
            )
        else:
            normalized = (
                message_in(
                    {route.body: body_json},
                    message_type,
                    "",
                    violations,
                    null_clears=null_clears,
                )
                or {}
            )
    # The query never sets the body's fields, so the two never overlap.
    normalized.update(query_in(query, route, violations))
    for variable in route.variables:
        raw = path_values.get(variable.field_path, "")
        if not raw:
            violations.append(FieldViolation(variable.name, f"missing parameter {variable.name}"))
            continue
        target = _field_at(message_type, variable.field_path)
        value = coerce_text(raw, target, variable.name, violations)
        if value is not None:
            _set_nested(normalized, variable.field_path, value)
    if violations:
        raise invalid_argument(violations)
    if route.verb == "PATCH" and _has_update_mask(message_type) and "update_mask" not in normalized:
        if route.body == "*" and isinstance(body_json, dict):
            skip = frozenset({v.field_path[0] for v in route.variables} | {"update_mask"})
            paths = derive_update_mask(body_json, message_type, skip)
        elif route.body and route.body != "*" and isinstance(body_json, dict):
            body_type = message_type.fields_by_name[route.body].message_type
            paths = derive_update_mask(body_json, body_type, frozenset()) if body_type else []
        else:
            paths = []
        if not paths:
            raise invalid_argument(
                [FieldViolation("update_mask", "the body names no field to change")],
                reason="EMPTY_UPDATE",
            )
        normalized["update_mask"] = field_mask_pb2.FieldMask(paths=paths).ToJsonString()
    request = route.input_class()
    try:
        json_format.ParseDict(normalized, request)
    except (json_format.ParseError, TypeError, ValueError, OverflowError) as e:
        raise invalid_argument([FieldViolation("", _parse_reason(e))]) from None
    return request


# ----------------------------------------------------------------------------- output


def _flatten_value(value: Any, field_descriptor: descriptor.FieldDescriptor) -> Any:
    message_type = field_descriptor.message_type
    if message_type is None or _is_json_native(message_type):
        return value
    if message_type.full_name == FIELD_MASK:
        return value
    if message_type.full_name == DECIMAL:
        return value.get("value", "") if isinstance(value, dict) else value
    if isinstance(value, dict):
        flatten_output(value, message_type)
    return value


def flatten_output(data: dict[str, Any], message_type: descriptor.Descriptor) -> dict[str, Any]:
    """Render every ``google.type.Decimal`` of a ``MessageToDict`` result as its string, in place.

    An empty decimal (unset in the service's codec) is left out.
    """
    for key in list(data):
        field_descriptor = message_type.fields_by_name.get(key)
        if field_descriptor is None or field_descriptor.message_type is None:
            continue
        value = data[key]
        if is_map(field_descriptor):
            value_field = field_descriptor.message_type.fields_by_name["value"]
            data[key] = {k: _flatten_value(v, value_field) for k, v in value.items()}
        elif field_descriptor.is_repeated:
            data[key] = [_flatten_value(v, field_descriptor) for v in value]
        else:
            flattened = _flatten_value(value, field_descriptor)
            if field_descriptor.message_type.full_name == DECIMAL and flattened == "":
                del data[key]
            else:
                data[key] = flattened
    return data


def reference_json(response: message.Message) -> dict[str, Any]:
    """``MessageToDict`` (proto field names, every field without presence printed), each decimal
    flattened to its string: the definition :func:`response_json` follows, in a faster way."""
    data = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    # The stubs type DESCRIPTOR as either backend's Descriptor; both have the same interface.
    return flatten_output(data, cast(descriptor.Descriptor, response.DESCRIPTOR))


# A compiled encoder per message type: what ``reference_json`` returns, the same keys in the
# same order, without json_format's per-field dispatch (it was most of the gateway's CPU on a
# list of orders). A message type with a field it does not know takes ``reference_json``.

_FD = descriptor.FieldDescriptor
_DROP = object()  # a singular empty decimal: left out (flatten_output)
_INT_TYPES = frozenset(
    {_FD.TYPE_INT32, _FD.TYPE_SINT32, _FD.TYPE_SFIXED32, _FD.TYPE_UINT32, _FD.TYPE_FIXED32}
)
_INT64_TYPES = frozenset(
    {_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64, _FD.TYPE_UINT64, _FD.TYPE_FIXED64}
)
TIMESTAMP = "google.protobuf.Timestamp"


class _Unsupported(Exception):
    """A field the compiled encoder does not render (reference_json does)."""


@dataclass(frozen=True)
class _Encoder:
    # Per field number: its key and how a set value is rendered; then what every unset field
    # without presence prints, in declaration order (a fresh [] or {} for each message).
    set_fields: dict[int, tuple[str, Callable[[Any], Any]]]
    defaults: tuple[tuple[str, Any, int], ...]

    def __call__(self, msg: Any) -> dict[str, Any]:
        js: dict[str, Any] = {}
        set_fields = self.set_fields
        for field_descriptor, value in msg.ListFields():
            name, convert = set_fields[field_descriptor.number]
            out = convert(value)
            if out is not _DROP:
                js[name] = out
        for name, default, kind in self.defaults:
            if name not in js:
                js[name] = default if kind == _SCALAR else [] if kind == _LIST else {}
        return js


_ENCODERS: dict[str, _Encoder | None] = {}
_SCALAR, _LIST, _MAP = 0, 1, 2


def _double(value: float) -> Any:
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return value


def _scalar(field_descriptor: descriptor.FieldDescriptor) -> Callable[[Any], Any]:
    kind = field_descriptor.type
    if kind == _FD.TYPE_STRING:
        return str
    if kind == _FD.TYPE_BOOL:
        return bool
    if kind in _INT_TYPES:
        return int
    if kind in _INT64_TYPES:
        return str
    if kind == _FD.TYPE_DOUBLE:
        return _double
    if kind == _FD.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode("utf-8")
    if kind == _FD.TYPE_ENUM:
        enum_type = field_descriptor.enum_type
        assert enum_type is not None
        if (
            enum_type.full_name == "google.protobuf.NullValue"
            or enum_type.is_closed
            or any(v.has_options for v in enum_type.values)  # json_name: reference_json's
        ):
            raise _Unsupported(enum_type.full_name)
        names = {number: v.name for number, v in enum_type.values_by_number.items()}
        return lambda number: names.get(number, number)  # an unknown number: the number
    raise _Unsupported(field_descriptor.full_name)


def _value(field_descriptor: descriptor.FieldDescriptor) -> Callable[[Any], Any]:
    # One value of a field (an element when repeated), as flatten_output leaves it.
    message_type = field_descriptor.message_type
    if message_type is None:
        return _scalar(field_descriptor)
    if message_type.full_name == DECIMAL:
        return lambda value: value.value
    if message_type.full_name == TIMESTAMP:
        return lambda value: value.ToJsonString()
    if message_type.full_name.startswith("google.protobuf."):
        raise _Unsupported(message_type.full_name)
    return _encoder(message_type)


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _map_of(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: {_map_key(k): convert(value[k]) for k in value}


def _list_of(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: [convert(v) for v in value]


def _singular_decimal(value: Any) -> Any:
    return value.value if value.value else _DROP


def _compile(message_type: descriptor.Descriptor) -> _Encoder:
    set_fields: dict[int, tuple[str, Callable[[Any], Any]]] = {}
    defaults: list[tuple[str, Any, int]] = []
    for field_descriptor in message_type.fields:
        name = field_descriptor.name
        if is_map(field_descriptor):
            value_field = message_type_of(field_descriptor).fields_by_name["value"]
            set_fields[field_descriptor.number] = (name, _map_of(_value(value_field)))
            defaults.append((name, None, _MAP))
        elif field_descriptor.is_repeated:
            set_fields[field_descriptor.number] = (name, _list_of(_value(field_descriptor)))
            defaults.append((name, None, _LIST))
        else:
            convert = _value(field_descriptor)
            message_type_of_field = field_descriptor.message_type
            if message_type_of_field is not None and message_type_of_field.full_name == DECIMAL:
                set_fields[field_descriptor.number] = (name, _singular_decimal)
            else:
                set_fields[field_descriptor.number] = (name, convert)
            if not field_descriptor.has_presence:
                defaults.append((name, convert(field_descriptor.default_value), _SCALAR))
    return _Encoder(set_fields, tuple(defaults))


def _encoder(message_type: descriptor.Descriptor) -> _Encoder:
    full_name = message_type.full_name
    if full_name in _ENCODERS:
        found = _ENCODERS[full_name]
        if found is None:
            raise _Unsupported(full_name)
        return found
    # None while it compiles: a recursive type meets itself and takes reference_json.
    _ENCODERS[full_name] = None
    compiled = _compile(message_type)
    _ENCODERS[full_name] = compiled
    return compiled


def _compiled_for(message_type: descriptor.Descriptor) -> _Encoder | None:
    try:
        return _encoder(message_type)
    except _Unsupported:
        _ENCODERS[message_type.full_name] = None
        return None


def response_json(response: message.Message, response_body: str = "") -> Any:
    """Return the JSON value of a response (or of its ``response_body`` field)."""
    message_type = cast(descriptor.Descriptor, response.DESCRIPTOR)
    encoder = _compiled_for(message_type)
    data = encoder(response) if encoder is not None else reference_json(response)
    if not response_body:
        return data
    if response_body in data:
        return data[response_body]
    field_descriptor = response.DESCRIPTOR.fields_by_name[response_body]
    value_type = field_descriptor.message_type
    if value_type is not None and value_type.full_name == DECIMAL:
        return None
    return {}
