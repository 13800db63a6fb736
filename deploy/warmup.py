"""Build-time smoke test of the stripped serving venv, which also decides which byte code to keep.

Run by deploy/slim-venv.sh after every __pycache__ was deleted: starts `wanwu serve` from the
venv, waits for /readyz, sends one image of every accepted format (and one bad upload), reads the
web page, /healthz, /metrics and /v1/models, the offline /docs and /redoc with their assets and the
OpenAPI schema, classifies once through the v2 (Open Inference Protocol) routes, then stops the
server with SIGTERM and requires exit code 0. Python writes byte code for exactly the modules
serving imported, so those (and only those) keep a .pyc: start-up stays fast and the rest of the
venv ships as source only. Fails the build if anything here fails: the stripped venv must serve.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def images() -> dict[str, bytes]:
    from PIL import Image

    rgb = Image.new("RGB", (320, 240))
    rgb.putdata([(x % 256, y % 256, (x * y) % 256) for y in range(240) for x in range(320)])
    out: dict[str, bytes] = {}

    def save(name: str, img: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    save("rgb.jpg", rgb, "JPEG", quality=90)
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    save("gray.jpg", rgb.convert("L"), "JPEG")
    save("rgba.png", rgb.convert("RGBA"), "PNG")
    save("palette.png", rgb.convert("P"), "PNG")
    save("16bit.png", rgb.convert("I;16"), "PNG")
    save("img.webp", rgb, "WEBP")
    save("img.gif", rgb.convert("P"), "GIF")
    save("img.bmp", rgb, "BMP")
    save("img.tiff", rgb, "TIFF", compression="tiff_lzw")
    return out


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(url: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def expect(url: str, wanted: bytes, body: bytes | None = None, ctype: str | None = None) -> bytes:
    """GETs (or POSTs) url and fails the build unless it answers 200 with `wanted` in the body."""
    status, answer = request(url, body, ctype)
    if status != 200 or wanted not in answer:
        raise SystemExit(f"warmup: {url}: HTTP {status}, {wanted!r} not in {answer[:300]!r}")
    return answer


def check_docs_and_v2(base: str, jpeg: bytes) -> None:
    """The offline API docs (pages, their local assets, the OpenAPI schema) and the Open Inference Protocol
    (KServe v2) routes, down to one inference: their modules get byte code, and a trim that breaks them
    fails the build."""
    expect(base + "/openapi.json", b'"/v2/models/{name}/infer"')
    expect(base + "/docs", b"/docs-assets/swagger-ui-bundle.js")
    expect(base + "/redoc", b"/docs-assets/redoc.standalone.js")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        expect(f"{base}/docs-assets/{asset}", b"")
    model = json.loads(expect(base + "/v1/models", b'"active"'))["active"]["model"]
    expect(base + "/v2", b'"extensions"')
    expect(base + "/v2/health/ready", b'"ready"')
    expect(f"{base}/v2/models/{model}", b'"inputs"')
    infer = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(jpeg).decode()]}]}
    answer = json.loads(expect(f"{base}/v2/models/{model}/infer", b'"labels"', json.dumps(infer).encode(), "application/json"))
    labels = next(o["data"] for o in answer["outputs"] if o["name"] == "labels")
    print(f"warmup: /openapi.json, /docs, /redoc and their assets, /v2 -> 200; v2 infer -> {labels[0]}")


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    wanwu = os.path.join(os.path.dirname(sys.executable), "wanwu")  # the image's entry point
    server = subprocess.Popen([wanwu, "serve", "--host", "127.0.0.1", "--port", str(port)])
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise SystemExit(f"warmup: server exited with {server.returncode} before it was ready")
            try:
                if request(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("warmup: not ready after 180 s")
            time.sleep(0.2)
        # Modules serving loads lazily on some paths: the Redis cache client.
        import redis.asyncio  # noqa: F401

        samples = images()
        for name, data in samples.items():
            status, body = request(base + "/v1/classify", *multipart([(name, data)]))
            top = json.loads(body)["results"][0]["predictions"][0] if status == 200 else None
            if status != 200 or not top.get("label"):
                raise SystemExit(f"warmup: {name}: HTTP {status}: {body[:300]!r}")
            print(f"warmup: {name:12s} -> {top['label']} / {top['label_zh']} ({top['score']:.3f})")
        status, _ = request(base + "/v1/classify", *multipart(list(samples.items())[:4]))
        assert status == 200, status
        status, _ = request(base + "/v1/classify", *multipart([("junk.jpg", b"not an image")]))
        assert 400 <= status < 500, f"a bad upload got HTTP {status}"
        for path in ("/", "/healthz", "/metrics", "/v1/models", "/static/app.css", "/nope"):
            print(f"warmup: GET {path} -> {request(base + path)[0]}")
        check_docs_and_v2(base, samples["rgb.jpg"])
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise SystemExit("warmup: server ignored SIGTERM for 30 s") from None
    if code != 0:
        raise SystemExit(f"warmup: server exited with {code} after SIGTERM")
    print("warmup: serving works on the stripped venv; SIGTERM -> exit 0")
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    sys.exit(main())
