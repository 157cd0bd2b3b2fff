"""The generated OpenAPI schema against AudD's own description (../shared/audd-reference/openapi.yaml):
every AudD method it describes exists at the same path, every request parameter is accepted with a
compatible type, and the response objects (the song object first) have every documented property
with a compatible type. What soundmark deliberately does not implement is listed below, so that a
new gap fails."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from soundmark.api.app import create_app
from soundmark.settings import Settings

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "audd-reference" / "openapi.yaml"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# AudD operations soundmark does not serve (none today: every documented method is implemented).
NOT_IMPLEMENTED_OPERATIONS: set[str] = set()
# Request parameters of the reference soundmark does not read, by operationId (none today).
NOT_IMPLEMENTED_PARAMETERS: dict[str, set[str]] = {}
# Response properties soundmark does not send, by reference schema.
NOT_IMPLEMENTED_PROPERTIES: dict[str, set[str]] = {
    # A "branded" result AudD's servers add to some errors (codes 19 and 31337) for its own promotions.
    "ErrorResponse": {"result"},
}

# Reference schema → soundmark's component schema of the same object.
RESPONSE_OBJECTS = {
    "RecognitionResult": "Song",
    "RecognizeSuccessResponse": "RecognizeSuccess",
    "LyricsResult": "LyricsHit",
    "FindLyricsSuccessResponse": "FindLyricsSuccess",
    "EnterpriseMatch": "EnterpriseSong",
    "EnterpriseChunkResult": "EnterpriseChunk",
    "EnterpriseSuccessResponse": "EnterpriseSuccess",
    "Stream": "Stream",
    "GetStreamsSuccessResponse": "GetStreamsSuccess",
    "GetCallbackUrlSuccessResponse": "GetCallbackUrlSuccess",
    "StreamMutationSuccessResponse": "EmptySuccess",
    "CustomCatalogUploadSuccessResponse": "EmptySuccess",
    "StreamCallbackResultBody": "CallbackResult",
    "StreamCallbackResultEnvelope": "CallbackResultBody",
    "StreamCallbackNotification": "CallbackNotificationBody",
    "LongpollTimeoutResponse": "LongpollTimeout",
    "LongpollEventResponse": "LongpollEvents",
    "ErrorResponse": "ErrorEnvelope",
    "MusicBrainzEntry": "MusicBrainzEntry",
}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} not present")
    loaded: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    return loaded


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(Settings(db=tmp_path_factory.mktemp("openapi") / "db"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema = app.openapi()
    assert not caught, [str(w.message) for w in caught]  # a duplicate operation id, say
    return schema


# --- schema helpers ------------------------------------------------------------------------------
def resolve(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def alternatives(root: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema's branches (anyOf/oneOf flattened, $refs resolved)."""
    schema = resolve(root, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [b for sub in schema[key] for b in alternatives(root, sub)]
    return [schema]


def json_types(root: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for branch in alternatives(root, schema):
        if "type" in branch:
            t = branch["type"]
            out.update(t if isinstance(t, list) else [t])
        elif "const" in branch or "enum" in branch:
            values = [branch["const"]] if "const" in branch else branch["enum"]
            out.update(_type_of(v) for v in values)
        elif "properties" in branch:
            out.add("object")
    return out


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "object"


def is_true_false(root: dict[str, Any], schema: dict[str, Any]) -> bool:
    return all(set(b.get("enum", [])) == {"true", "false"} for b in alternatives(root, schema))


def compatible(ref_root: dict[str, Any], ref: dict[str, Any], our_root: dict[str, Any], our: dict[str, Any]) -> bool:
    """Whether every value the reference's schema allows is one of ours: same JSON types, an
    integer where we take numbers, a 'true'/'false' string where we take a boolean (parameters
    arrive as strings and are parsed as such)."""
    theirs, mine = json_types(ref_root, ref), json_types(our_root, our)
    if not theirs or not mine:
        return not theirs  # an untyped reference allows anything; so must we then
    if "number" in mine:
        mine.add("integer")
    if "boolean" in mine and theirs == {"string"} and is_true_false(ref_root, ref):
        return True
    return theirs <= mine


def properties(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The properties of an object schema, over all its object branches."""
    out: dict[str, dict[str, Any]] = {}
    for branch in alternatives(root, schema):
        out.update(branch.get("properties", {}))
    return out


def operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def request_parameters(root: dict[str, Any], op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every parameter an operation takes: query parameters and form-body fields."""
    out = {p["name"]: p.get("schema", {}) for p in op.get("parameters", [])}
    for content in op.get("requestBody", {}).get("content", {}).values():
        out.update(properties(root, content.get("schema", {})))
    return out


def path_parameters(root: dict[str, Any], schema: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """Every parameter any operation at ``path`` takes (AudD reads the query string and the form
    body alike, whatever the HTTP method)."""
    out: dict[str, dict[str, Any]] = {}
    for (p, _), op in operations(schema).items():
        if p == path:
            out.update(request_parameters(root, op))
    return out


# --- methods -------------------------------------------------------------------------------------
def test_every_reference_method_is_served_at_its_path(reference: dict[str, Any], ours: dict[str, Any]) -> None:
    mine = operations(ours)
    missing = [
        f"{method.upper()} {path} ({op['operationId']})"
        for (path, method), op in operations(reference).items()
        if op["operationId"] not in NOT_IMPLEMENTED_OPERATIONS and (path, method) not in mine
    ]
    assert not missing, missing
    assert len(operations(reference)) >= 12  # the reference really was read


def test_every_reference_parameter_is_accepted_with_a_compatible_type(
    reference: dict[str, Any], ours: dict[str, Any]
) -> None:
    problems = []
    for (path, _method), op in operations(reference).items():
        if op["operationId"] in NOT_IMPLEMENTED_OPERATIONS:
            continue
        accepted = path_parameters(ours, ours, path)
        skipped = NOT_IMPLEMENTED_PARAMETERS.get(op["operationId"], set())
        for name, ref_schema in request_parameters(reference, op).items():
            if name in skipped:
                continue
            if name not in accepted:
                problems.append(f"{op['operationId']}: `{name}` is not accepted")
            elif not compatible(reference, ref_schema, ours, accepted[name]):
                problems.append(
                    f"{op['operationId']}: `{name}` is {json_types(reference, ref_schema)} in AudD's description, "
                    f"{json_types(ours, accepted[name])} here"
                )
    assert not problems, problems


def test_answers_are_documented_with_the_response_models(ours: dict[str, Any]) -> None:
    """Each AudD method documents its success envelope and the error envelope (HTTP 200)."""
    for (path, method), op in operations(ours).items():
        if path != "/" and op.get("tags") != ["AudD methods"]:
            continue
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]
        names = {b.get("title") for b in alternatives(ours, answer)}
        assert "ErrorEnvelope" in names, (method, path, names)
        assert any(n and n.endswith("Success") for n in names), (method, path, names)


def test_job_status_is_documented(ours: dict[str, Any]) -> None:
    answer = ours["paths"]["/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {b.get("title") for b in alternatives(ours, answer)} == {"JobSuccess", "ErrorEnvelope"}


def test_longpoll_is_documented(ours: dict[str, Any]) -> None:
    op = ours["paths"]["/longpoll/"]["get"]
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    names = {b.get("title") for b in alternatives(ours, answer)}
    assert names == {"LongpollTimeout", "LongpollEvents"}
    assert {p["name"] for p in op["parameters"]} == {"category", "timeout", "since_time"}


# --- response objects ----------------------------------------------------------------------------
def _property_problems(
    reference: dict[str, Any], ref_schema: dict[str, Any], ours: dict[str, Any], our_schema: dict[str, Any], where: str
) -> list[str]:
    problems = []
    skipped = NOT_IMPLEMENTED_PROPERTIES.get(where, set())
    mine = properties(ours, our_schema)
    for name, ref_prop in properties(reference, ref_schema).items():
        if name in skipped:
            continue
        if name not in mine:
            problems.append(f"{where}.{name} is missing")
        elif not compatible(reference, ref_prop, ours, mine[name]):
            problems.append(
                f"{where}.{name} is {json_types(reference, ref_prop)} in AudD's description, "
                f"{json_types(ours, mine[name])} here"
            )
    return problems


@pytest.mark.parametrize("ref_name", sorted(RESPONSE_OBJECTS))
def test_response_object_has_every_reference_property(
    reference: dict[str, Any], ours: dict[str, Any], ref_name: str
) -> None:
    ref_schema = reference["components"]["schemas"][ref_name]
    our_schema = ours["components"]["schemas"][RESPONSE_OBJECTS[ref_name]]
    problems = _property_problems(reference, ref_schema, ours, our_schema, ref_name)
    assert not problems, problems


def test_song_provider_blocks_have_every_reference_field(reference: dict[str, Any], ours: dict[str, Any]) -> None:
    """The song object's blocks (apple_music, spotify …) document every field AudD's do."""
    ref_song = properties(reference, reference["components"]["schemas"]["RecognitionResult"])
    our_song = properties(ours, ours["components"]["schemas"]["Song"])
    problems = []
    for block in ("apple_music", "spotify", "deezer", "napster", "musicbrainz"):
        ref_block, our_block = ref_song[block], our_song[block]
        if block == "musicbrainz":
            ref_block = ref_block["items"]
            our_block = next(b for b in alternatives(ours, our_block) if b.get("type") == "array")["items"]
        problems += _property_problems(reference, ref_block, ours, our_block, f"Song.{block}")
    assert not problems, problems


def test_stream_callback_song_has_every_reference_property(reference: dict[str, Any], ours: dict[str, Any]) -> None:
    ref_song = reference["components"]["schemas"]["StreamCallbackResultBody"]["properties"]["results"]["items"]
    problems = _property_problems(reference, ref_song, ours, ours["components"]["schemas"]["StreamSong"], "results[]")
    assert not problems, problems


def test_the_compatibility_check_can_fail(reference: dict[str, Any], ours: dict[str, Any]) -> None:
    """The checks above are not vacuous: a wrong type and a missing property are reported."""
    assert not compatible(reference, {"type": "integer"}, ours, {"type": "string"})
    assert compatible(reference, {"type": "integer"}, ours, {"anyOf": [{"type": "number"}, {"type": "null"}]})
    assert compatible(reference, {"type": "string", "enum": ["true", "false"]}, ours, {"type": "boolean"})
    problems = _property_problems(
        reference, {"properties": {"x": {"type": "string"}}}, ours, {"properties": {}}, "Probe"
    )
    assert problems == ["Probe.x is missing"]
