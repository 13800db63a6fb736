"""``wanwu serve``: builds settings from flags (over ``WANWU_*`` variables), then runs Uvicorn."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from wanwu.cli_options import add_model_options

# flag -> (type, help); each maps to the ServiceSettings field of the same name (WANWU_<NAME>).
_FLAGS: dict[str, tuple[type, str]] = {
    "host": (str, "address to bind (default 127.0.0.1)"),
    "port": (int, "port (default 8000)"),
    "top_k": (int, "labels per image when a request does not say (default 5)"),
    "max_batch": (int, "most images per engine call (default 8)"),
    "max_wait_ms": (float, "longest wait for a batch to fill while requests are decoding (default 5)"),
    "max_queue": (int, "images allowed to wait for the engine before answering 503 (default 64)"),
    "request_timeout_s": (float, "per-request timeout (default 30)"),
    "inference_threads": (int, "engine threads (default: all cores)"),
    "inference_workers": (int, "engines running batches in parallel, threads split between them (default 1)"),
    "decode_threads": (int, "decode threads (default: all cores)"),
    "max_upload_bytes": (int, "largest image upload in bytes (default 20 MiB)"),
    "max_pixels": (int, "largest decoded image in pixels (default 64,000,000)"),
    "max_images_per_request": (int, "most images in one request (default 16)"),
    "cache_size": (int, "in-process result cache entries, 0 = off (default 4096)"),
    "redis_url": (str, "share the result cache through Redis, e.g. redis://127.0.0.1:6379/0"),
    "api_key": (str, "require this key in the X-API-Key header for /v1/*"),
    "malloc_arenas": (int, "cap on glibc malloc arenas, 0 = glibc's 8 per core (default 2)"),
}


def add_serve_parser(sub) -> None:  # type: ignore[no-untyped-def]
    serve = sub.add_parser("serve", help="run the HTTP service and web page (flags override WANWU_* variables)")
    add_model_options(serve, ("model", "engine", "weights", "precision"), dest_prefix="serve_", repeatable=("model",))
    for name, (kind, help_text) in _FLAGS.items():
        serve.add_argument(f"--{name.replace('_', '-')}", dest=f"serve_{name}", type=kind, help=help_text)
    serve.add_argument("--fast-decode", dest="serve_fast_decode", action="store_true", default=None)
    serve.add_argument("--cors-origin", dest="serve_cors_origins", action="append", help="allow this origin (repeatable)")
    serve.add_argument("--log-level", default="info")


def settings_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from wanwu.service.settings import ServiceSettings

    flags = {k.removeprefix("serve_"): v for k, v in vars(args).items() if k.startswith("serve_") and v is not None}
    if isinstance(flags.get("model"), list):  # --model A --model B@2: A is the default, each is loaded once
        flags["model"], flags["extra_models"] = flags["model"][0], flags["model"][1:]
    if args.home is not None:
        flags["home"] = args.home
    return ServiceSettings(**flags)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from wanwu.errors import WanwuError
    from wanwu.loader import check_model
    from wanwu.service.app import create_app
    from wanwu.service.http11 import JsonErrorsH11Protocol
    from wanwu.service.memory import limit_malloc_arenas

    try:
        settings = settings_from_args(args)
    except ValidationError as err:
        first = err.errors()[0]
        raise WanwuError(f"invalid setting {first['loc'][0]} (WANWU_{str(first['loc'][0]).upper()}): {first['msg']}") from None
    for model in filter(None, [settings.model, *settings.extra_models]):
        check_model(model, settings.home)  # an unknown name fails now, with the list of valid ones
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    limit_malloc_arenas(settings.malloc_arenas)  # before the decode and engine threads exist
    _own_pillow_limit(settings.max_pixels)
    # Uvicorn drains on SIGTERM, then re-raises it to whatever handler was there before; with
    # this one a drained stop exits 0 instead of "killed by signal" (143), which orchestrators log as a failure.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
        log_config=None,  # one format for uvicorn and wanwu, set by basicConfig above
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        http=JsonErrorsH11Protocol,  # Uvicorn's own 400s in the service's JSON error shape (docs/security.md)
    )
    return 0


def _own_pillow_limit(max_pixels: int) -> None:
    """The server owns its process: Pillow's bomb guard follows ``--max-pixels`` here.

    The library leaves ``PIL.Image.MAX_IMAGE_PIXELS`` alone (a library user's process is theirs);
    in the server, wanwu's own check — which names the limit and its setting — is the one that
    should answer, so Pillow's guard is raised to at least that limit and its warning silenced.
    """
    import warnings

    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None:
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS, max_pixels)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
