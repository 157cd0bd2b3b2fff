"""The ASGI app: ``create_app(settings)`` opens the store, the worker pool and the token table
in ``lifespan``, and mounts the routers (AudD methods last, as they catch every path)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from soundmark import __version__
from soundmark.api.logs import AccessLog
from soundmark.api.origin import operator
from soundmark.api.routes import enterprise, method_paths, methods, pages, streams, ws
from soundmark.api.routes import explain as explain_routes
from soundmark.api.routes import reports as report_routes
from soundmark.api.state import AppState, Metrics, open_database, usage_counter
from soundmark.audd.errors import RequestEcho, error_body
from soundmark.catalog.writer import refuse_on_loop
from soundmark.services.recognition_pool import RecognitionPool
from soundmark.services.runtime import Role
from soundmark.settings import Settings
from soundmark.store import Store, recorded_params, use_catalog_url
from soundmark.web import install as install_web

log = logging.getLogger("soundmark.api")

# Feature modules: each has `router` (extra HTTP routes), `HANDLERS` (AudD methods by name) and
# `lifespan(state)` (an async context manager for its background work).
FEATURES = (enterprise, streams)

# Swagger UI's files, from the pinned swagger-ui-bundle package: /docs works offline.
DOCS_ASSETS = "/docs-assets"


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        use_catalog_url(settings.db, settings.catalog_url)
        store = Store(settings.db, recorded_params(settings.db), create=True, index_url=settings.index_url)
        pool = RecognitionPool(
            settings.db, workers=settings.workers, max_inflight=settings.max_inflight,
            min_score=settings.min_score, min_votes=settings.min_votes,
        )  # fmt: skip
        pool.warm_up()
        db = open_database(settings, store.params)  # the one SQLite writer, and the read pool
        state = AppState(settings, store, pool, db, usage_counter(db), Metrics())
        state.handlers.update(methods.HANDLERS)
        for feature in FEATURES:
            state.handlers.update(feature.HANDLERS)
        app.state.soundmark = state
        # The parent's Store is for threads (store.refresh); every read of a request goes
        # through the read pool: a statement on this connection from the event loop fails.
        refuse_on_loop(store.catalog.conn)
        tracks, hours = await db.aread(lambda catalog: catalog.totals())
        log.info("ready", extra={"fields": {"db": str(settings.db), "tracks": tracks, "hours": round(hours, 2),
                                            "workers": pool.workers, "role": settings.role}})  # fmt: skip
        try:
            async with AsyncExitStack() as stack:
                for feature in FEATURES:
                    await stack.enter_async_context(feature.lifespan(state))
                yield
        finally:
            pool.close()
            db.close()  # runs the writes still queued (usage counts) first
            store.close()

    app = FastAPI(
        title="soundmark",
        version=__version__,
        description="Self-hosted music recognition with an AudD-compatible API.",
        lifespan=lifespan,
        docs_url=None,  # served below with local assets instead of a CDN
        redoc_url=None,
    )
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(AccessLog)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Last resort: an AudD-shaped error, the details only in the server log.
        log.exception("unhandled error", extra={"fields": {"path": request.url.path}})
        echo = RequestEcho("recognize", request.method, {})
        body = error_body(1000, "internal server error.", echo, operator=operator(request, settings))
        return JSONResponse(body, status_code=500)

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(HTTPException)
    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 400)
        echo = RequestEcho("recognize", request.method, {})
        body = error_body(50, "invalid request.", echo, operator=operator(request, settings))
        return JSONResponse(body, status_code=status)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )  # fmt: skip

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
    if not Role.of(settings).serves_api:  # a background node (services/runtime.py): probes only
        app.add_api_route("/healthz", pages.healthz, methods=["GET"], summary="liveness and catalog size")
        app.add_api_route("/metrics", pages.metrics, methods=["GET"], summary="Prometheus metrics")
        return app
    app.include_router(pages.router)
    app.include_router(ws.router)
    for feature in FEATURES:
        app.include_router(feature.router)
    app.include_router(report_routes.router)  # /reports.json|csv|pdf (admin), before the catch-all
    install_web(app)  # the browser pages: `/` for a browser only, /login, /tokens, /static (web/)
    app.include_router(explain_routes.router)  # POST /explain (why it matched), before the catch-all
    method_paths.install(app)
    app.include_router(methods.router)
    return app
