"""OpenAPI fragments generated from the parameter models (typed.py) and the response models
(models.py): a method's form body, its query parameters, the JSON schema of an answer.

The transport (api/) hands these to FastAPI (``openapi_extra``, ``responses``); nothing here is
hand-written but the audio fields, which no parameter model reads (the request reader does).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

REF_TEMPLATE = "#/components/schemas/{model}"

# The audio of a request: one of them (recognize, upload, enterprise).
AUDIO_FIELDS: dict[str, dict[str, Any]] = {
    "url": {"type": "string", "format": "uri", "description": "the audio (or video) to download"},
    "file": {"type": "string", "format": "binary", "description": "the audio, uploaded"},
    "audio": {"type": "string", "description": "the audio, base64-encoded"},
}
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def object_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s parameters as one flat JSON-schema object (their JSON names, no ``$defs``)."""
    schema = model.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE)
    if "$defs" in schema:
        raise ValueError(f"{model.__name__}: a parameter model must be flat (no nested models)")
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return _standard_bounds(schema)


# Bounds pydantic leaves in its own spelling on a constrained member of a union (``Id | None``).
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _standard_bounds(node: Any) -> Any:
    if isinstance(node, dict):
        return {_BOUNDS.get(k, k) if isinstance(v, int | float) else k: _standard_bounds(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_standard_bounds(v) for v in node]
    return node


def form_body(model: type[BaseModel], *, audio: bool = False) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the method's form body (query string or JSON work
    too), with the audio fields when the method reads audio."""
    schema = object_schema(model)
    if audio:
        schema["properties"] = {**schema.get("properties", {}), **AUDIO_FIELDS}
    content = {media: {"schema": schema} for media in FORM_TYPES}
    return {"requestBody": {"content": content}}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """``model``'s fields as OpenAPI query parameters."""
    schema = object_schema(model)
    required = set(schema.get("required", []))
    return [
        {"in": "query", "name": name, "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def response_schema(shape: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of an answer of type ``shape`` (a model or a union of them) and the
    component schemas it refers to."""
    schema = TypeAdapter(shape).json_schema(mode="serialization", ref_template=REF_TEMPLATE)
    return schema, schema.pop("$defs", {})
