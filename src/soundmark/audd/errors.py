"""AudD's error codes in one table, and the error envelope (models.py ``ErrorEnvelope``).

Every API answer is HTTP 200 with AudD's ``status`` envelope; an error carries the code and a
message prefixed by the method's phrase ("Recognition failed: ..."), the request's parameters
with the token masked, and the method names, exactly as AudD's live responses do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from soundmark.audd.models import ErrorDetail, ErrorEnvelope, wire
from soundmark.auth.tokens import mask_token

# What error bodies name under "contact us" / "see api documentation" when the operator set
# nothing (settings ``contact`` / ``docs_url``): this server's own operator and its own /docs.
DEFAULT_CONTACT = "the operator of this server"
DEFAULT_DOCS_PATH = "/docs"

# Parameter names whose values are secrets: masked in every echo and in the access log.
# Matched case-insensitively on the decoded name (``api%5Ftoken`` is ``api_token``).
_SECRET_KEY = re.compile(
    r"token|secret|passw|(^|[_-])key$|api_?key|authori[sz]ation|^auth$|session|cookie|credential", re.IGNORECASE
)

# code → default message (after the method phrase)
MESSAGES: dict[int, str] = {
    19: "Internal error.",
    50: "invalid request.",
    100: "an unknown error occurred. Please contact the server's operator.",
    300: (
        "there was a problem with fingerprints creating. Keep in mind that you should send only audio "
        "files, and the audio must be at least a second long."
    ),
    400: "the audio file is too big. {limit} is the maximum. Please use the enterprise endpoint for longer files.",
    500: "the file you sent is not a valid or supported audio file.",
    501: "no audio could be fetched from the URL.",
    600: "the audio URL is incorrect or the file couldn't be downloaded.",
    611: "too many requests are being processed; retry in a few seconds.",
    700: (
        "you haven't sent a file via POST or a file URL in the `url` parameter. If you sent the request "
        "by POST, please check that your Content-Type header equals to `multipart/form-data`."
    ),
    900: "authorization failed: the provided api_token is incorrect, invalid, or inactive.",
    901: "authorization failed: no api_token passed and the limit was reached. Get an api_token from the operator.",
    902: "authorization failed: the limit of requests for this api_token was reached.",
    904: "this api_token has no access to this method.",
    1000: "internal server error.",
}

# API method → phrase that starts every error message of that method (AudD's wording).
METHOD_PHRASES: dict[str, str] = {
    "recognize": "Recognition failed",
    "recognizeWithOffset": "Recognition failed",
    "findLyrics": "Finding lyrics failed",
    "upload": "Uploading the song failed",
    "setCallbackUrl": "Setting the URL for callbacks failed",
    "getCallbackUrl": "Getting the URL for callbacks failed",
    "addStream": "Adding a stream stream failed",
    "setStreamUrl": "Setting the stream URL failed",
    "getStreams": "Getting the streams failed",
    "deleteStream": "Deleting the stream failed",
    "longpoll": "Longpoll failed",
}


class ApiError(Exception):
    """An AudD error to answer with; raised anywhere in request handling."""

    def __init__(self, code: int, message: str | None = None):
        super().__init__(message or MESSAGES.get(code, MESSAGES[100]))
        self.code = code
        self.message = message or MESSAGES.get(code, MESSAGES[100])


@dataclass(frozen=True)
class Operator:
    """Who runs this server and where its documentation is, as error bodies name them."""

    contact: str = DEFAULT_CONTACT
    docs_url: str = DEFAULT_DOCS_PATH


@dataclass(frozen=True)
class RequestEcho:
    method: str
    http_method: str
    params: dict[str, str]


def is_secret_key(key: str) -> bool:
    """Whether a parameter named ``key`` (decoded) looks like it carries a token or a password."""
    return bool(_SECRET_KEY.search(key))


def masked_params(params: dict[str, str]) -> dict[str, str]:
    """Every received parameter as a string, every token-like one masked as AudD does (a***z)."""
    out = {}
    for key, value in params.items():
        if is_secret_key(key):
            out[key] = mask_token(value)
        elif key == "audio":
            out[key] = f"<{len(value)} characters of base64>"
        else:
            out[key] = value if len(value) <= 500 else value[:500] + "…"
    return out


def error_body(
    code: int, message: str, echo: RequestEcho, *, enterprise: bool = False, operator: Operator | None = None
) -> dict[str, object]:
    operator = operator or Operator()
    if enterprise:  # AudD's enterprise host answers the bare sentence, without a method phrase
        text = message[:1].upper() + message[1:]
    else:
        text = f"{METHOD_PHRASES.get(echo.method, 'Request failed')}: {message}"
    fields: dict[str, object] = {"status": "error", "error": ErrorDetail(error_code=code, error_message=text)}
    if enterprise:
        # AudD's enterprise host echoes the method as "recognize" unless the client named one.
        echoed = masked_params(echo.params)
        fields["requested_params"] = {**echoed, "method": echoed.get("method") or "recognize"}
    else:
        fields["request_params"] = masked_params(echo.params)
        fields["request_api_method"] = echo.method
        fields["request_http_method"] = echo.http_method
    fields["see_api_documentation"] = operator.docs_url
    fields["contact_us"] = operator.contact
    body: dict[str, object] = wire(ErrorEnvelope.model_validate(fields))
    return body
