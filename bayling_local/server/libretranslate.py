"""LibreTranslate-compatible endpoints: ``/translate``, ``/detect``, ``/languages``,
``/translate_file`` (and ``/download_file/...`` for its result).

Requests are read as LibreTranslate's clients send them: a JSON object, or form fields
(``libretranslatepy`` posts ``application/x-www-form-urlencoded``), with the key as the
``api_key`` field or as a Bearer header. Errors are ``{"error": "..."}`` as LibreTranslate
writes them. Files never touch the disk: an upload is translated in memory and its result is
kept, under a random name, in a small in-memory store until it is fetched or expires.
"""

from __future__ import annotations

import mimetypes
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData

from ..errors import UsageError
from ..languages import Language, all_languages, resolve
from .backend import Backend, ClientGone, run_in_thread
from .errors import APIError
from .security import require_key
from .translation import file_types, plain_text_of_html, translate_texts
from .translation import translate_file as translate_document

router = APIRouter(tags=["LibreTranslate"])

MAX_ALTERNATIVES = 4
# LibreTranslate's own codes for two languages whose ISO codes need a region.
_LT_CODES = {"zt": "zh-TW", "pb": "pt-BR"}


# -- shapes ------------------------------------------------------------------------------------


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    q: str | list[str] = Field(
        description="Text to translate, or a list of texts.", examples=["Good morning!"]
    )
    source: str = Field(
        default="auto", description="Source language code, or 'auto'.", examples=["auto", "en"]
    )
    target: str = Field(description="Target language code.", examples=["de", "zh"])
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(default=0, ge=0, le=MAX_ALTERNATIVES)
    glossary: str | None = Field(
        default=None, description="A glossary the server loaded (serve --glossary NAME=FILE)."
    )
    api_key: str | None = None


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    q: str = Field(
        description="Text whose language to detect.", examples=["Guten Morgen, wie geht es?"]
    )
    api_key: str | None = None


class DetectedLanguage(BaseModel):
    confidence: float
    language: str


class TranslateResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 - LibreTranslate's field names
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None  # noqa: N815
    alternatives: list[str] | list[list[str]] | None = None


class LanguageEntry(BaseModel):
    code: str
    name: str
    targets: list[str]


class FileResponse(BaseModel):
    translatedFileUrl: str  # noqa: N815


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }


# -- reading requests --------------------------------------------------------------------------


def _form_fields(form: FormData) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        if values:
            fields[key] = values if key == "q" and len(values) > 1 else values[0]
    return fields


async def read_fields(request: Request) -> dict[str, Any]:
    """The request's fields, from JSON, a form, or (for an empty body) the query string."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise APIError(400, "the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise APIError(400, "the request body must be a JSON object")
        return data
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        except Exception as exc:  # python-multipart's parse errors, bad encodings
            if isinstance(exc, APIError):
                raise
            raise APIError(400, f"the form data cannot be read: {exc}") from None
        return _form_fields(form)
    if not await request.body():
        return dict(request.query_params)
    raise APIError(
        415,
        f"unsupported Content-Type {ctype or '(none)'!r}; send application/json or form data",
    )


MAX_FORM_FIELDS = 1024


def _validate(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        if first.get("type") == "missing":
            raise APIError(400, f"Invalid request: missing {where} parameter") from None
        raise APIError(400, f"Invalid request: {where}: {first.get('msg')}") from None


def _language(code: str, field: str) -> Language:
    code = code.strip()
    try:
        return resolve(_LT_CODES.get(code.lower(), code))
    except UsageError as exc:
        raise APIError(400, f"{field}: {exc.message}") from None


def _backend(request: Request) -> Backend:
    return request.app.state.backend


def _detected(text: str, fmt: str) -> DetectedLanguage:
    from ..detect import detect

    sample = plain_text_of_html(text) if fmt == "html" else text
    try:
        found = detect(sample)
    except UsageError:
        return DetectedLanguage(confidence=0.0, language="und")
    return DetectedLanguage(
        confidence=round(found.confidence * 100, 1), language=found.language.code
    )


# -- endpoints ---------------------------------------------------------------------------------


@router.post(
    "/translate",
    response_model=TranslateResponse,
    response_model_exclude_none=True,
    openapi_extra=_body_schema(TranslateRequest),
)
async def translate(request: Request) -> TranslateResponse:
    """Translate ``q`` (a text or a list) into ``target``; ``source`` may be ``auto``."""
    fields = await read_fields(request)
    require_key(request, fields.get("api_key") if isinstance(fields.get("api_key"), str) else None)
    body: TranslateRequest = _validate(TranslateRequest, fields)
    backend = _backend(request)
    config = backend.config
    texts = [body.q] if isinstance(body.q, str) else list(body.q)
    if not texts or not any(t.strip() for t in texts):
        raise APIError(400, "Invalid request: q is empty; there is no text to translate")
    if len(texts) > config.max_segments:
        raise APIError(
            400, f"Invalid request: q holds {len(texts)} texts; at most {config.max_segments}"
        )
    chars = sum(len(t) for t in texts)
    if chars > config.max_chars:
        raise APIError(
            400,
            f"Invalid request: {chars} characters; this server takes at most {config.max_chars}",
        )
    target = _language(body.target, "target")
    auto = body.source.strip().lower() == "auto"
    source = None if auto else _language(body.source, "source")
    glossary = backend.glossary(body.glossary)

    ticket = backend.admit()
    cancel = threading.Event()

    def work() -> tuple[list[Any], list[DetectedLanguage]]:
        detected = [_detected(t, body.format) for t in texts] if auto else []
        results = translate_texts(
            backend,
            texts,
            target,
            source=source,
            fmt=body.format,
            alternatives=body.alternatives,
            glossary=glossary,
            memory=config.memory,
            cancel=cancel,
        )
        return results, detected

    def gone() -> None:
        ticket.cancelled = True
        cancel.set()

    backend.track(cancel.set)
    try:
        results, detected = await run_in_thread(work, request.receive, gone)
    except ClientGone:
        raise APIError(400, "the client went away") from None
    finally:
        backend.untrack(cancel.set)
        ticket.release()
    single = isinstance(body.q, str)
    response = TranslateResponse(
        translatedText=results[0].text if single else [r.text for r in results]
    )
    if auto:
        response.detectedLanguage = detected[0] if single else detected
    if body.alternatives:
        alts = [r.alternatives for r in results]
        response.alternatives = alts[0] if single else alts
    return response


@router.post(
    "/detect", response_model=list[DetectedLanguage], openapi_extra=_body_schema(DetectRequest)
)
async def detect_language(request: Request) -> list[DetectedLanguage]:
    """The language of ``q``, with a confidence from 0 to 100."""
    from ..detect import detect

    fields = await read_fields(request)
    require_key(request, fields.get("api_key") if isinstance(fields.get("api_key"), str) else None)
    body: DetectRequest = _validate(DetectRequest, fields)
    if not body.q.strip():
        raise APIError(400, "Invalid request: q is empty")
    if len(body.q) > _backend(request).config.max_chars:
        raise APIError(400, "Invalid request: q is longer than this server takes")
    try:
        found = detect(body.q)
    except UsageError as exc:
        raise APIError(400, exc.message.replace("pass -s/--source", "give the source")) from None
    return [
        DetectedLanguage(confidence=round(found.confidence * 100, 1), language=found.language.code)
    ]


_languages_cache: list[LanguageEntry] | None = None


@router.get("/languages", response_model=list[LanguageEntry])
async def languages(request: Request) -> list[LanguageEntry]:
    """Every language BayLing covers; each can be translated into every other."""
    global _languages_cache
    require_key(request, request.query_params.get("api_key"))
    if _languages_cache is None:
        langs = all_languages()
        codes = [lang.code for lang in langs]
        _languages_cache = [
            LanguageEntry(code=lang.code, name=lang.name, targets=codes) for lang in langs
        ]
    return _languages_cache


class _FileStore:
    """Translated files awaiting download, in memory, oldest dropped first."""

    def __init__(self, limit: int = 32, ttl: float = 3600.0) -> None:
        self.limit = limit
        self.ttl = ttl
        self._files: OrderedDict[str, tuple[float, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, name: str, data: bytes) -> str:
        token = f"{uuid.uuid4().hex}.{name}"
        with self._lock:
            self._files[token] = (time.monotonic(), data, name)
            while len(self._files) > self.limit:
                self._files.popitem(last=False)
        return token

    def get(self, token: str) -> tuple[bytes, str] | None:
        with self._lock:
            now = time.monotonic()
            for key in [k for k, (t, _, _) in self._files.items() if now - t > self.ttl]:
                del self._files[key]
            entry = self._files.get(token)
        return (entry[1], entry[2]) if entry else None


def _safe_name(filename: str | None) -> tuple[str, str]:
    """(stem, suffix) of an upload's name with any directories dropped and odd characters out."""
    base = PurePath((filename or "file.txt").replace("\\", "/")).name or "file.txt"
    clean = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".") or "file"
    path = PurePath(clean)
    return path.stem or "file", path.suffix.lower()


@router.post("/translate_file", response_model=FileResponse)
async def translate_file(
    request: Request,
    file: Annotated[UploadFile, File(description="The document to translate.")],
    target: Annotated[str, Form(description="Target language code.")],
    source: Annotated[str, Form(description="Source language code, or 'auto'.")] = "auto",
    glossary: Annotated[str | None, Form(description="A glossary the server loaded.")] = None,
    api_key: Annotated[str | None, Form()] = None,
) -> FileResponse:
    """Translate an uploaded document; the result is fetched from ``translatedFileUrl``."""
    require_key(request, api_key)
    backend = _backend(request)
    stem, suffix = _safe_name(file.filename)
    types = file_types()
    if suffix not in types:
        raise APIError(
            400,
            f"unsupported file type {suffix or '(none)'!r}; this server translates "
            + ", ".join(types),
        )
    data = await file.read()
    if not data.strip():
        raise APIError(400, "file: the file is empty")
    target_lang = _language(target, "target")
    source_lang = None if source.strip().lower() == "auto" else _language(source, "source")
    chosen = backend.glossary(glossary)
    ticket = backend.admit()
    cancel = threading.Event()

    def gone() -> None:
        ticket.cancelled = True
        cancel.set()

    def work() -> bytes:
        return translate_document(
            backend,
            data,
            stem + suffix,
            target_lang,
            source=source_lang,
            glossary=chosen,
            memory=backend.config.memory,
            cancel=cancel,
        )

    backend.track(cancel.set)
    try:
        output = await run_in_thread(work, request.receive, gone)
    except ClientGone:
        raise APIError(400, "the client went away") from None
    except UsageError as exc:  # a document its format's parser cannot read
        raise APIError(400, f"file: {exc.message}") from None
    finally:
        backend.untrack(cancel.set)
        ticket.release()
    out_name = f"{stem}.{target_lang.code}{suffix}"
    token = request.app.state.files.put(out_name, output)
    return FileResponse(translatedFileUrl=str(request.url_for("download_file", token=token)))


@router.get("/download_file/{token}", name="download_file")
async def download_file(token: str, request: Request) -> Response:
    """A file translated by /translate_file (kept in memory for an hour)."""
    found = request.app.state.files.get(token)
    if found is None:
        raise APIError(404, "no such file (it expired, or the server restarted)")
    data, name = found
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


FILES = _FileStore
