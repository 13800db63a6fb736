"""``wanwu serve``: settings from flags (over ``WANWU_*`` variables, over defaults), then Uvicorn.

Each flag maps to the ``ServiceSettings`` field of the same meaning (``--threads`` -> ``inference_threads``,
``--batch-size`` -> ``max_batch``); its variable, named in its help, is read by the settings themselves.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from wanwu.cli.common import add_options

# field -> (type, metavar, help, default in words); the flag is --<field with dashes>, the variable WANWU_<FIELD>.
_FLAGS: dict[str, tuple[type, str, str, str]] = {
    "host": (str, "HOST", "address to bind", "127.0.0.1"),
    "port": (int, "PORT", "port", "8000"),
    "top_k": (int, "K", "labels per image when a request does not say", "5"),
    "max_wait_ms": (float, "MS", "longest wait for a batch to fill while requests are decoding", "5"),
    "max_queue": (int, "N", "images allowed to wait for the engine before answering 503", "64"),
    "request_timeout_s": (float, "SECONDS", "per-request timeout", "30"),
    "inference_workers": (int, "N", "engines running batches in parallel, threads split between them", "1"),
    "decode_threads": (int, "N", "decode threads", "the usable cores"),
    "max_upload_bytes": (int, "BYTES", "largest image upload in bytes", "20 MiB"),
    "max_images_per_request": (int, "N", "most images in one request", "16"),
    "cache_size": (int, "N", "in-process result cache entries, 0 = off", "4096"),
    "redis_url": (str, "URL", "share the result cache through Redis, e.g. redis://127.0.0.1:6379/0", "none"),
    "api_key": (str, "KEY", "require this key in the X-API-Key header for /v1/*", "none"),
    "malloc_arenas": (int, "N", "cap on glibc malloc arenas, 0 = glibc's 8 per core", "2"),
}
# the shared options' names for the settings fields they set (the rest share the field's name)
_SHARED = {"threads": "inference_threads", "batch_size": "max_batch"}


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    serve = sub.add_parser("serve", help="run the HTTP service and web page (flags override WANWU_* variables)",
                           description="The HTTP service and its web page. Every flag overrides its WANWU_* variable.")
    add_options(serve, ("model", "engine", "weights", "precision", "threads", "batch-size", "max-pixels"),
                dest_prefix="serve_", repeatable=("model",), from_env=False)
    for name, (kind, metavar, help_text, default) in _FLAGS.items():
        serve.add_argument(f"--{name.replace('_', '-')}", dest=f"serve_{name}", type=kind, metavar=metavar,
                           help=f"{help_text} (WANWU_{name.upper()}; default: {default})")
    serve.add_argument("--fast-decode", dest="serve_fast_decode", action="store_true", default=None,
                       help="JPEG DCT downscaling for large photos (WANWU_FAST_DECODE; default: off)")
    serve.add_argument("--cors-origin", dest="serve_cors_origins", action="append", metavar="ORIGIN",
                       help="allow this origin (repeatable; WANWU_CORS_ORIGINS, a JSON list; default: none)")
    serve.add_argument("--log-level", default=os.environ.get("WANWU_LOG_LEVEL", "info"), metavar="LEVEL", type=str.lower,
                       choices=("critical", "error", "warning", "info", "debug", "trace"),
                       help="critical, error, warning, info, debug or trace (WANWU_LOG_LEVEL; default: info)")
    # the old names, still accepted (hidden): --threads and --batch-size are the ones every command shares
    serve.add_argument("--inference-threads", dest="serve_threads", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--max-batch", dest="serve_batch_size", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(handler=run_serve)
    return serve


def settings_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from wanwu.service.settings import ServiceSettings

    flags = {k.removeprefix("serve_"): v for k, v in vars(args).items() if k.startswith("serve_") and v is not None}
    flags = {_SHARED.get(k, k): v for k, v in flags.items()}
    if isinstance(flags.get("model"), list):  # --model A --model B@2: A is the default, each is loaded once
        flags["model"], flags["extra_models"] = flags["model"][0], flags["model"][1:]
    if getattr(args, "home", None) is not None:
        flags["home"] = args.home
    return ServiceSettings(**flags)


def _invalid_setting(err) -> str:  # type: ignore[no-untyped-def]
    """``invalid setting max_batch (WANWU_MAX_BATCH): ...``, naming the variable it came from (or would)."""
    from wanwu.service.settings import ServiceSettings

    first = err.errors()[0]
    name = str(first["loc"][0])
    for field, info in ServiceSettings.model_fields.items():
        aliases = [str(a) for a in getattr(info.validation_alias, "choices", ())]
        if name in aliases or (name == field and aliases):
            variable = next((a for a in aliases if a in os.environ), aliases[0])  # the one set, else the documented one
            return f"invalid setting {field} ({variable}): {first['msg']}"
    return f"invalid setting {name} (WANWU_{name.upper()}): {first['msg']}"


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
        raise WanwuError(_invalid_setting(err)) from None
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
