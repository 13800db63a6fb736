"""The FastAPI app: ``create_app(settings, classifier=None)``. Routes are thin; the work is in ``pipeline``."""

from __future__ import annotations

import asyncio
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
from wanwu.service.auth import require_api_key as _require_api_key
from wanwu.service.docs import add_offline_docs
from wanwu.service.errors import (
    InvalidRequestError,
    JsonCORSMiddleware,
    ShutdownMiddleware,
    error_body,
    handle_unexpected,
    handle_wanwu_error,
    status_of,
)
from wanwu.service.metrics_middleware import MetricsMiddleware
from wanwu.service.models import activation_request, class_info, loaded_models
from wanwu.service.pipeline import Pipeline
from wanwu.service.settings import ServiceSettings
from wanwu.service.state import ServiceState
from wanwu.service.uploads import ClassifyOptions, Upload, read_classify_request
from wanwu.service.v2 import add_v2_routes, is_v2, v2_error


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
    app.add_exception_handler(WanwuError, _wanwu_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)  # every other error: JSON 500, never plain text
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
    add_v2_routes(app)  # the Open Inference Protocol (KServe v2): /v2/...
    _add_page_routes(app, state)
    return app


def _pipeline(state: ServiceState) -> Pipeline:
    return state.require_ready()


async def _classify_all(state: ServiceState, uploads: list[Upload], options: ClassifyOptions) -> tuple[Pipeline, list[dict]]:
    _pipeline(state)
    pipeline = state.pick(options.model)
    assert pipeline is not None
    pipeline.inflight += 1  # in the same step as the pick: a version being replaced waits for this request
    try:
        if len(uploads) == 1:
            return pipeline, [await pipeline.classify(uploads[0], options)]

        async def one(upload: Upload) -> dict:
            try:
                return await pipeline.classify(upload, options)
            except WanwuError as err:
                state.metrics.images.labels("error").inc()
                return {"filename": upload.filename, **error_body(err), "status": status_of(err)}

        return pipeline, list(await asyncio.gather(*(one(u) for u in uploads)))
    finally:
        pipeline.inflight -= 1


_OPTIONS = {
    "top_k": {"type": "integer", "minimum": 1, "description": "classes per image (default: --top-k; at most WANWU_MAX_TOP_K)"},
    "min_score": {"type": "number", "minimum": 0, "maximum": 1, "default": 0, "description": "drop classes scoring below"},
    "lang": {"type": "string", "enum": ["zh", "en", "both"], "default": "both", "description": "label language"},
    "view": {"type": "string", "enum": ["categories", "classes", "both"], "default": "both",
             "description": "everyday categories (dog, cat, car ...), the fine ImageNet classes, or both"},
    "model": {"type": "string", "description": "one of the loaded models, NAME or NAME@V (default: the first --model)"},
}
# The route parses its body itself (multipart or JSON, bounded: uploads.py), so FastAPI sees no parameters;
# the schema is declared here for /docs, whose "Try it out" then has a file field and the options.
CLASSIFY_OPENAPI = {
    "parameters": [{"name": name, "in": "query", "required": False, "schema": schema, "description": schema["description"]}
                   for name, schema in _OPTIONS.items()],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "array", "items": {"type": "string", "format": "binary"},
                                  "description": "one or more image files (JPEG, PNG, WebP, GIF, BMP, TIFF)"},
                        **_OPTIONS,
                    },
                },
                "encoding": {"image": {"contentType": "image/*"}},
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {"type": "array", "items": {"oneOf": [
                            {"type": "string", "format": "byte", "description": "base64, or a data: URL"},
                            {"type": "object", "required": ["data"], "properties": {
                                "data": {"type": "string", "format": "byte"}, "filename": {"type": "string"}}},
                        ]}},
                        **_OPTIONS,
                    },
                },
            },
        },
    },
}


def _add_api_routes(app: FastAPI, state: ServiceState) -> None:
    @app.post("/v1/classify", dependencies=[Depends(_require_api_key)], tags=["classify"], openapi_extra=CLASSIFY_OPENAPI)
    async def classify(request: Request) -> JSONResponse:
        """Classify one or more images: multipart field ``image`` or JSON ``{"images": [base64, ...]}``."""
        uploads, options = await read_classify_request(request, state.settings)
        pipeline, results = await _classify_all(state, uploads, options)
        classifier = pipeline.classifier
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
                **(class_info(active) or {}),
                **({"precision_choice": active.precision_choice.as_dict()} if active.precision_choice else {}),
            },
            "models": [
                {"name": s.name, "description": s.description, "top1": s.accuracy.top1, "top5": s.accuracy.top5}
                for s in list_models()
            ],
            **loaded_models(state),
        }

    @app.post("/v1/models/{name}/activate", dependencies=[Depends(_require_api_key)], tags=["models"])
    async def activate(name: str, request: Request) -> JSONResponse:
        """Load ``name`` (``NAME``, ``NAME@V``, or ``?version=V``) beside what runs, warm it, then switch its slot to it
        with no failed request; ``?default=true`` also makes it the default model."""
        _pipeline(state)
        ref, make_default = activation_request(name, request.query_params)
        classifier, previous = await state.activate(ref, make_default)
        return JSONResponse({"activated": classifier.model_name, "previous": previous, **loaded_models(state)})


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
        lang = _page_lang(request)
        body = page.render_page(model=model, lang=lang, models=_model_names(state), active=class_info(state.classifier))
        return _page_response(request, body, lang)

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def index_post(request: Request) -> HTMLResponse:
        """The seed's plain form post: works without JavaScript."""
        model = state.classifier and state.classifier.model_name
        lang, models = _page_lang(request), _model_names(state)
        try:
            await _require_api_key(request)
            uploads, options = await read_classify_request(request, state.settings)
            pipeline, results = await _classify_all(state, uploads, options)
        except WanwuError as err:
            error = error_body(err)["error"]
            body = page.render_page(model=model, error=error, lang=lang, models=models, active=class_info(state.classifier))
            return _page_response(request, body, lang, status_of(err))
        used = pipeline.classifier.model_name
        body = page.render_page(model=used, results=results, lang=lang, models=models, picked=used,
                                active=class_info(pipeline.classifier))
        return _page_response(request, body, lang)


def _model_names(state: ServiceState) -> list[str]:
    return [p.classifier.model_name for p in state.pipelines.values()]


def _page_lang(request: Request) -> str:
    """``?lang=`` switches the page (no JavaScript needed), then the remembered choice, then ``Accept-Language``."""
    return page.page_lang(request.query_params.get("lang"), request.cookies.get(page.LANG_COOKIE),
                          request.headers.get("accept-language"))


def _page_response(request: Request, body: str, lang: str, status: int = 200) -> HTMLResponse:
    """The page; an explicit ``?lang=`` is remembered in a cookie (as the script's switch does)."""
    response = HTMLResponse(body, status_code=status, headers={"Vary": "Accept-Language, Cookie"})
    if request.query_params.get("lang") in page.LANGS:
        response.set_cookie(page.LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


async def _wanwu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WanwuError)
    return v2_error(exc) if is_v2(request) else await handle_wanwu_error(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    response = await handle_unexpected(request, exc)
    return JSONResponse({"error": "internal error; the server log has the details"}, 500) if is_v2(request) else response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"])
    err = InvalidRequestError(f"invalid {where}: {first['msg']}")
    return v2_error(err) if is_v2(request) else JSONResponse(error_body(err), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if is_v2(request):
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, exc.status_code, headers=exc.headers)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code, headers=exc.headers)
