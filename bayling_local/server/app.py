"""The ASGI application: both APIs on one backend, behind the size cap, the key and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.middleware.cors import CORSMiddleware

from .. import __version__
from .backend import Backend
from .errors import install_handlers
from .libretranslate import FILES
from .libretranslate import router as libretranslate_router
from .openai_api import router as openai_router
from .security import BodyLimit

DESCRIPTION = """\
BayLing served offline by bayling-local: OpenAI-compatible chat and completions under `/v1`,
LibreTranslate-compatible `/translate`, `/detect`, `/languages` and `/translate_file`.
Every request is decoded on one batch engine, together with the others in flight.
"""


def create_app(backend: Backend) -> FastAPI:
    """The app for ``backend``; closing the app (lifespan end) closes the backend."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            backend.close()

    config = backend.config
    app = FastAPI(
        title="bayling-local",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.backend = backend
    app.state.config = config
    app.state.files = FILES()
    install_handlers(app)
    app.include_router(openai_router)
    app.include_router(libretranslate_router)

    @app.get("/health", tags=["Server"])
    async def health(request: Request) -> dict[str, Any]:
        """Liveness, the model, and the request counters (no key needed)."""
        return {
            "status": "closing" if backend.closing else "ok",
            "model": config.model_id,
            "parallel": config.parallel,
            "capacity": config.capacity,
            **backend.counters.as_dict(),
        }

    def openapi() -> dict[str, Any]:
        """The generated document, with this server's model id as the example of ``model``."""
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for name in ("ChatCompletionRequest", "CompletionRequest"):
                fields = schema.get("components", {}).get("schemas", {}).get(name, {})
                if "model" in fields.get("properties", {}):
                    fields["properties"]["model"]["examples"] = [config.model_id]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.add_middleware(BodyLimit, max_body=config.max_body, max_file=config.max_file)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    return app
