"""OpenAI-compatible endpoints: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``.

Chat messages are rendered with the model's BayLing format (the same renderer as the CLI and
the terminal UI), so any OpenAI client gets BayLing's own prompt. Unknown fields that OpenAI
clients like to send (``logit_bias``, ``user`` ...) are accepted and ignored; parameters that
would change the answer and that the engine cannot honour (``n`` > 1, images, tools) are
refused with a 400 rather than silently dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..batch import DecodeRequest, DecodeResult
from ..engine import SamplingConfig
from ..errors import PromptError
from ..prompts import Message, to_messages
from .backend import Backend, ClientGone, run_in_thread, stream_pieces
from .errors import APIError, error_body, log
from .security import require_key
from .sse import EventStream, sse_event

router = APIRouter(prefix="/v1", tags=["OpenAI"])

MAX_STOPS = 4


async def _authorized(request: Request) -> None:
    require_key(request)


# -- request and response shapes ---------------------------------------------------------------


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(description="The model id from GET /v1/models.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request.")
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(description="One prompt (a list of one is accepted).")
    echo: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "bayling-local"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


# -- shared steps ------------------------------------------------------------------------------


def backend_of(request: Request) -> Backend:
    return request.app.state.backend


def check_model(backend: Backend, name: str) -> str:
    config = backend.config
    if name == config.model_id or name in config.model_aliases:
        return config.model_id
    raise APIError(
        404,
        f"the model {name!r} does not exist; this server serves {config.model_id!r}",
        code="model_not_found",
        param="model",
    )


def _message_text(message: ChatMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise APIError(
                400,
                f"messages.{index}: only text content is supported, not {part.type!r}",
                param=f"messages.{index}.content",
            )
        texts.append(part.text)
    return "".join(texts)


def chat_messages(body: ChatCompletionRequest) -> list[Message]:
    items = [
        {"role": "system" if m.role == "developer" else m.role, "content": _message_text(m, i)}
        for i, m in enumerate(body.messages)
    ]
    try:
        return to_messages(items)
    except PromptError as exc:
        raise APIError(400, exc.message, param="messages") from None


def stop_strings(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOPS:
        raise APIError(400, f"stop: at most {MAX_STOPS} stop strings", param="stop")
    return tuple(s for s in stops if s)


def plan_request(
    backend: Backend,
    prompt: str,
    body: _Sampling,
    max_tokens: int | None,
    extra_stops: tuple[str, ...],
) -> tuple[DecodeRequest, int]:
    """The decode request for ``prompt`` and its prompt token count, limits checked."""
    engine = backend.engine
    n_ctx = engine.n_ctx
    prompt_tokens = len(engine.tokenize(prompt))
    room = n_ctx - prompt_tokens
    if room < 1:
        raise APIError(
            400,
            f"the prompt is {prompt_tokens} tokens but the model's context holds {n_ctx}",
            code="context_length_exceeded",
            param="messages",
        )
    cap = min(backend.config.max_tokens or n_ctx, n_ctx)
    if max_tokens is not None:
        if max_tokens > cap:
            raise APIError(
                400,
                f"max_tokens is {max_tokens} but this server allows at most {cap}",
                param="max_tokens",
            )
        if max_tokens > room:
            raise APIError(
                400,
                f"the model's context holds {n_ctx} tokens; the prompt takes {prompt_tokens}, "
                f"leaving {room}, fewer than max_tokens={max_tokens}",
                code="context_length_exceeded",
                param="max_tokens",
            )
    defaults: SamplingConfig = backend.chat_sampling
    sampling = replace(
        defaults,
        max_tokens=max_tokens or min(defaults.max_tokens, cap, room),
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=defaults.top_p if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=(),
        repeat_penalty=1.0,  # OpenAI's API has no repetition penalty: temperature 0 is argmax
    )
    stops = stop_strings(body.stop)
    request = DecodeRequest(prompt, sampling, tuple(dict.fromkeys((*extra_stops, *stops))))
    return request, prompt_tokens


def finish_reason(result: DecodeResult) -> str:
    return "length" if result.finish_reason in ("length", "context") else "stop"


def usage(prompt_tokens: int, result: DecodeResult) -> Usage:
    completion = result.stats.generated_tokens
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        total_tokens=prompt_tokens + completion,
    )


async def generate(request: Request, decode: DecodeRequest) -> DecodeResult:
    """Run one decode to the end on the batch engine (cancelled if the client leaves)."""
    backend = backend_of(request)
    ticket = backend.admit()
    handle = backend.submit(decode)

    def gone() -> None:
        ticket.cancelled = True
        handle.cancel()

    try:
        result = await run_in_thread(handle.result, request.receive, gone)
    finally:
        backend.forget(handle)
        ticket.release()
    if result.finish_reason == "cancelled":  # not by this client: the server is stopping
        raise APIError(503, "the server is shutting down", code="shutting_down")
    return result


def stream_response(
    request: Request,
    decode: DecodeRequest,
    chunk: Any,
    final: Any,
) -> EventStream:
    """Stream one decode as SSE: ``chunk(text)`` per piece, ``final(result)`` events at the end."""
    backend = backend_of(request)
    ticket = backend.admit()
    handle = backend.submit(decode)

    def gone() -> None:
        ticket.cancelled = True
        handle.cancel()

    def close() -> None:
        handle.cancel()  # no-op when finished; frees the slot when the stream broke off
        backend.forget(handle)
        ticket.release()

    async def events():
        try:
            async for piece in stream_pieces(handle):
                yield sse_event(chunk(piece))
            result = handle.result()
        except Exception:  # headers are sent: the error goes in the stream, in OpenAI's shape
            log.exception("generation failed")
            error = APIError(500, "generation failed; the server log has the details")
            yield sse_event(error_body("/v1", error))
            return
        if (
            result.finish_reason == "cancelled"
        ):  # by the server stopping (a gone client reads nothing)
            error = APIError(503, "the server is shutting down", code="shutting_down")
            yield sse_event(error_body("/v1", error))
            return
        for event in final(result):
            yield sse_event(event)
        yield sse_event("[DONE]")

    return EventStream(events(), on_disconnect=gone, on_close=close)


# -- endpoints ---------------------------------------------------------------------------------


@router.get("/models", response_model=ModelList, dependencies=[Depends(_authorized)])
async def list_models(request: Request) -> ModelList:
    """The one model this server runs."""
    backend = backend_of(request)
    return ModelList(data=[ModelCard(id=backend.config.model_id, created=backend.created)])


@router.get("/models/{model}", response_model=ModelCard, dependencies=[Depends(_authorized)])
async def get_model(model: str, request: Request) -> ModelCard:
    backend = backend_of(request)
    return ModelCard(id=check_model(backend, model), created=backend.created)


@dataclass(frozen=True)
class _Answer:
    """What chat and text completions share: one JSON body, or SSE chunks closed by the last
    choice and (when asked) a usage event; a client gone before the end gets 499."""

    id_prefix: str
    chunk_object: str
    model: str
    prompt_tokens: int

    async def respond(
        self,
        request: Request,
        body: ChatCompletionRequest | CompletionRequest,
        decode: DecodeRequest,
        delta: Callable[[str], dict[str, Any]],
        last: Callable[[DecodeResult], dict[str, Any]],
        whole: Callable[[str, int, DecodeResult], Any],
    ) -> Any:
        ident, created = f"{self.id_prefix}-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            base = {
                "id": ident,
                "object": self.chunk_object,
                "created": created,
                "model": self.model,
            }

            def chunk(text: str) -> dict[str, Any]:
                return {**base, "choices": [delta(text)]}

            def final(result: DecodeResult) -> list[dict[str, Any]]:
                events: list[dict[str, Any]] = [{**base, "choices": [last(result)]}]
                if include_usage:
                    used = usage(self.prompt_tokens, result).model_dump()
                    events.append({**base, "choices": [], "usage": used})
                return events

            return stream_response(request, decode, chunk, final)
        try:
            result = await generate(request, decode)
        except ClientGone:
            return JSONResponse({}, status_code=499)
        return whole(ident, created, result)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    dependencies=[Depends(_authorized)],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """The next assistant turn, in BayLing's prompt format; ``stream`` sends SSE chunks."""
    backend = backend_of(request)
    model = check_model(backend, body.model)
    engine = backend.engine
    prompt = engine.render(chat_messages(body))
    decode, prompt_tokens = plan_request(
        backend,
        prompt,
        body,
        body.max_completion_tokens or body.max_tokens,
        engine.prompt_format.stop_strings,
    )
    first = [True]

    def delta(text: str) -> dict[str, Any]:
        piece: dict[str, Any] = {"content": text}
        if first[0]:
            piece["role"] = "assistant"
            first[0] = False
        return {"index": 0, "delta": piece, "finish_reason": None}

    def last(result: DecodeResult) -> dict[str, Any]:
        piece: dict[str, Any] = {"role": "assistant", "content": ""} if first[0] else {}
        return {"index": 0, "delta": piece, "finish_reason": finish_reason(result)}

    def whole(ident: str, created: int, result: DecodeResult) -> ChatCompletion:
        return ChatCompletion(
            id=ident,
            created=created,
            model=model,
            choices=[
                ChatChoice(
                    index=0,
                    message=AssistantMessage(content=result.text),
                    finish_reason=finish_reason(result),
                )
            ],
            usage=usage(prompt_tokens, result),
        )

    answer = _Answer("chatcmpl", "chat.completion.chunk", model, prompt_tokens)
    return await answer.respond(request, body, decode, delta, last, whole)


@router.post(
    "/completions",
    response_model=Completion,
    dependencies=[Depends(_authorized)],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def completions(body: CompletionRequest, request: Request) -> Any:
    """Continue raw prompt text (no chat format applied)."""
    backend = backend_of(request)
    model = check_model(backend, body.model)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise APIError(400, "prompt: give exactly one prompt per request", param="prompt")
    prompt = prompts[0]
    if not prompt:
        raise APIError(400, "prompt: the prompt is empty", param="prompt")
    decode, prompt_tokens = plan_request(backend, prompt, body, body.max_tokens, ())
    echo = prompt if body.echo else ""
    pending_echo = [echo]

    def delta(text: str) -> dict[str, Any]:
        text, pending_echo[0] = pending_echo[0] + text, ""
        return {"index": 0, "text": text, "finish_reason": None, "logprobs": None}

    def last(result: DecodeResult) -> dict[str, Any]:
        text = pending_echo[0]
        return {"index": 0, "text": text, "finish_reason": finish_reason(result), "logprobs": None}

    def whole(ident: str, created: int, result: DecodeResult) -> Completion:
        return Completion(
            id=ident,
            created=created,
            model=model,
            choices=[
                CompletionChoice(
                    index=0, text=echo + result.text, finish_reason=finish_reason(result)
                )
            ],
            usage=usage(prompt_tokens, result),
        )

    answer = _Answer("cmpl", "text_completion", model, prompt_tokens)
    return await answer.respond(request, body, decode, delta, last, whole)
