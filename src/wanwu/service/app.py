"""The FastAPI app: ``create_app(settings, classifier=None)``. Routes are thin; the work is in ``pipeline``."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from wanwu import __version__
from wanwu.classifier import Classifier
from wanwu.errors import WanwuError
from wanwu.service import page
from wanwu.service.docs import add_offline_docs
from wanwu.service.errors import (
    InvalidRequestError,
    JsonCORSMiddleware,
    NotReadyError,
    ShutdownMiddleware,
    UnauthorizedError,
    error_body,
    handle_unexpected,
    handle_wanwu_error,
    status_of,
)
from wanwu.service.metrics_middleware import MetricsMiddleware
from wanwu.service.settings import ServiceSettings
from wanwu.service.state import ServiceState
from wanwu.service.uploads import ClassifyOptions, Upload, read_classify_request


def create_app(settings: ServiceSettings | None = None, classifier: Classifier | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    state = ServiceState(settings, classifier)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        loading = asyncio.create_task(state.start())
        yield
        await loading
        await state.stop()

    app = FastAPI(title="wanwu 万物识别", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    add_offline_docs(app)  # /docs and /redoc from local files: FastAPI's load from a CDN
    app.state.wanwu = state
    app.add_exception_handler(WanwuError, handle_wanwu_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, handle_unexpected)  # every other error: JSON 500, never plain text
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    if settings.cors_origins:
        app.add_middleware(
            JsonCORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.add_middleware(ShutdownMiddleware)
    static = resources.files("wanwu.service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    _add_api_routes(app, state)
    _add_ops_routes(app, state)
    _add_page_routes(app, state)
    return app


async def _require_api_key(request: Request) -> None:
    # async on purpose: FastAPI runs a sync dependency in its thread pool, a thread hop per request.
    expected = request.app.state.wanwu.settings.api_key
    if not expected:
        return
    supplied = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        supplied = supplied or auth[7:]
    if not secrets.compare_digest(supplied.encode(), expected.encode()):
        raise UnauthorizedError("missing or wrong API key: send it in the X-API-Key header")


def _pipeline(state: ServiceState):  # type: ignore[no-untyped-def]
    if state.pipeline is None:
        # The load error names files in the store: the log has it whole, a client gets its kind only.
        kind = state.error and state.error.split(":", 1)[0]
        reason = f"the model failed to load ({kind}); the server log says why" if kind else "the model is still loading"
        raise NotReadyError(f"not ready: {reason}")
    return state.pipeline


async def _classify_all(state: ServiceState, uploads: list[Upload], options: ClassifyOptions) -> list[dict]:
    pipeline = _pipeline(state)
    if len(uploads) == 1:
        return [await pipeline.classify(uploads[0], options)]

    async def one(upload: Upload) -> dict:
        try:
            return await pipeline.classify(upload, options)
        except WanwuError as err:
            state.metrics.images.labels("error").inc()
            return {"filename": upload.filename, **error_body(err), "status": status_of(err)}

    return list(await asyncio.gather(*(one(u) for u in uploads)))


def _add_api_routes(app: FastAPI, state: ServiceState) -> None:
    @app.post("/v1/classify", dependencies=[Depends(_require_api_key)], tags=["classify"])
    async def classify(request: Request) -> JSONResponse:
        """Classify one or more images: multipart field ``image`` or JSON ``{"images": [base64, ...]}``."""
        uploads, options = await read_classify_request(request, state.settings)
        results = await _classify_all(state, uploads, options)
        classifier = state.classifier
        assert classifier is not None
        # The body is plain JSON types already: a JSONResponse skips FastAPI's jsonable_encoder walk.
        return JSONResponse({
            "model": classifier.model_name,
            "weights_sha256": classifier.weights_sha256,
            "engine": classifier.engine.name,
            "precision": classifier.engine.precision,
            "results": results,
        })

    @app.get("/v1/models", dependencies=[Depends(_require_api_key)], tags=["models"])
    async def models() -> dict:
        from wanwu.models import list_models

        active = state.classifier
        return {
            "active": None if active is None else {
                "model": active.model_name,
                "weights_sha256": active.weights_sha256,
                **active.engine.describe(),
                **({"precision_choice": active.precision_choice.as_dict()} if active.precision_choice else {}),
            },
            "models": [
                {"name": s.name, "description": s.description, "top1": s.accuracy.top1, "top5": s.accuracy.top5}
                for s in list_models()
            ],
        }


def _add_ops_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        return {"status": "alive", "uptime_s": round(time.monotonic() - state.started, 1)}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        if not state.ready:
            _pipeline(state)
        return JSONResponse({"status": "ready", "ready_after_s": round(state.ready_after_s or 0, 3)})

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        if state.pipeline is not None:
            state.metrics.queue_depth.set(state.pipeline.batcher.queue_depth)
        return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _add_page_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        model = state.classifier and state.classifier.model_name
        return HTMLResponse(page.render_page(model=model, lang=_page_lang(request)))

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def index_post(request: Request) -> HTMLResponse:
        """The seed's plain form post: works without JavaScript."""
        model = state.classifier and state.classifier.model_name
        lang = _page_lang(request)
        try:
            await _require_api_key(request)
            uploads, options = await read_classify_request(request, state.settings)
            results = await _classify_all(state, uploads, options)
        except WanwuError as err:
            error = error_body(err)["error"]
            return HTMLResponse(page.render_page(model=model, error=error, lang=lang), status_code=status_of(err))
        return HTMLResponse(page.render_page(model=model, results=results, lang=lang))


def _page_lang(request: Request) -> str:
    """The page's language: ``?lang=en`` switches it without JavaScript; Chinese by default."""
    return "en" if request.query_params.get("lang") == "en" else "zh"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"])
    err = InvalidRequestError(f"invalid {where}: {first['msg']}")
    return JSONResponse(error_body(err), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code, headers=exc.headers)
