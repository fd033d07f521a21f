"""API operations declared once: the same pydantic models validate requests and write the OpenAPI document."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core import keys
from core.api import API_PREFIX, json_body, validate

_REF = "#/components/schemas/{model}"
_RETRY_AFTER = {"description": "seconds to wait before asking again", "schema": {"type": "integer", "minimum": 1}}


@dataclass
class Operation:
    """One documented API operation."""

    method: str
    path: str  # OpenAPI form, relative to API_PREFIX: /threads/{thread_id}
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, tuple[str, type[BaseModel] | None]]
    description: str = ""
    optional_body: bool = False
    auth: bool = True


@dataclass
class ApiSpec:
    """The registry of operations, filled as blueprints declare them."""

    operations: list[Operation] = field(default_factory=list)
    # Path ids that become part of Redis keys: the server refuses any other shape (422).
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        name: {"type": "string", "pattern": keys.ID_PATTERN, "maxLength": 128} for name in ("thread_id", "callback_id")
    })

    def path_parameter(self, name: str, schema: dict[str, Any]) -> None:
        """Document what the server accepts in the path parameter `name` (any other shape is a 422)."""
        self.path_schemas[name] = schema

    def route(self, bp: Blueprint, rule: str, method: str, *, summary: str,
              responses: dict[int, tuple[str, type[BaseModel] | None]], body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, description: str = "",
              optional_body: bool = False) -> Callable[[Callable[..., Any]], Any]:
        """Register a view on bp that receives validated `body` and `query` models and returns (model, status)."""
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
        self.operations.append(Operation(method.upper(), path, summary, bp.name, body, query, responses,
                                         description, optional_body))

        def decorator(view: Callable[..., tuple[BaseModel, int]]) -> Callable[..., Any]:
            @functools.wraps(view)
            def wrapper(**kwargs: Any) -> Any:
                if query is not None:
                    kwargs["query"] = validate(query, request.args.to_dict(), ("query",))
                if body is not None:
                    empty = optional_body and not request.get_data(cache=True)
                    kwargs["body"] = body.model_validate({}) if empty else json_body(body)
                result, status = view(**kwargs)
                if status not in responses:
                    raise AssertionError(f"{method} {rule} answered undocumented status {status}")
                response = jsonify(result.model_dump(mode="json"))
                response.status_code = status
                return response

            bp.add_url_rule(rule, view.__name__, wrapper, methods=[method.upper()])
            return wrapper

        return decorator


API = ApiSpec()


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "field": {"type": "string", "description": "the field at fault, as a.b[0].c"},
                           "details": {"type": "array", "items": {"type": "object"}}},
        }},
    }


def document(spec: ApiSpec, title: str, version: str) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document from the registered operations and their models."""
    models = {m for op in spec.operations for m in
              [op.body, *(model for _, model in op.responses.values())] if m is not None}
    keyed = [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)]
    refs, defs = models_json_schema(keyed, ref_template=_REF) if keyed else ({}, {})
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _error_schema()
    error_ref = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    paths: dict[str, dict[str, Any]] = {}
    for op in spec.operations:
        item: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                                "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', op.path)}"}
        if op.description:
            item["description"] = op.description
        params = [{"name": name, "in": "path", "required": True,
                   "schema": spec.path_schemas.get(name, {"type": "string"})}
                  for name in re.findall(r"{([^}]+)}", op.path)]
        if op.query is not None:
            qschema = op.query.model_json_schema()
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in qschema.get("required", []),
                               "schema": prop, "description": prop.get("description", "")})
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": not op.optional_body, "content": {"application/json": {
                "schema": refs[(op.body, "validation")]}}}
        responses: dict[str, Any] = {}
        for status, (desc, model) in sorted(op.responses.items()):
            responses[str(status)] = {"description": desc}
            if model is not None:
                responses[str(status)]["content"] = {"application/json": {"schema": refs[(model, "validation")]}}
            elif status >= 400:
                responses[str(status)].update(error_ref)
        for status, desc in ((400, "malformed request"), (401, "missing or invalid API key"),
                             (413, "body too large"), (415, "body is not JSON"), (422, "invalid field")):
            responses.setdefault(str(status), {"description": desc, **error_ref})
        responses.setdefault("503", {"description": "Redis is unreachable for now; ask again after Retry-After",
                                     "headers": {"Retry-After": _RETRY_AFTER}, **error_ref})
        item["responses"] = responses
        if op.auth:
            item["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": API_PREFIX}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


docs_bp = Blueprint("api_docs", __name__, url_prefix=API_PREFIX)


@docs_bp.get("/openapi.json")
def openapi_json() -> Any:
    """Serve the OpenAPI document (public: it describes the API, it holds no data)."""
    return jsonify(document(API, "Threadline API", "1.0.0"))
