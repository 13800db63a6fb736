"""Hostile request bodies for the fuzz corpus (``tests/fuzz_corpus.py``): JSON and multipart an attacker would send."""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _png_chunk(kind: bytes, body: bytes, fix_crc: bool = True) -> bytes:
    crc = zlib.crc32(kind + body) if fix_crc else random.getrandbits(32)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _bit_flips(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, max(2, len(data)))]


def hostile_json(rng: random.Random, png: bytes) -> tuple[str, bytes, str]:
    """A JSON body (or what claims to be one) built around a valid ``png``."""
    depth = rng.choice([10, 500, 999, 1000, 3000, 100_000])
    cases: list[tuple[str, bytes]] = [
        (f"json-nested-{depth}", b"[" * depth + b"]" * depth),
        (f"json-nested-in-field-{depth}", b'{"images": ["x"], "a": ' + b"[" * depth + b"]" * depth + b"}"),
        ("json-long-int", b'{"images": ["' + b64(png).encode() + b'"], "top_k": ' + b"9" * rng.choice([20, 33, 5000, 100_000]) + b"}"),
        ("json-long-float", b'{"images": [], "min_score": 0.' + b"1" * rng.choice([31, 64, 100_000]) + b"}"),
        ("json-nan", b'{"images": ["' + b64(png).encode() + b'"], "min_score": NaN}'),
        ("json-many-values", b"[" + b"0," * rng.choice([1000, 5000, 200_000]) + b"0]"),
        ("json-many-objects", b"[" + b"{}," * 50_000 + b"{}]"),
        ("json-random-bytes", rng.randbytes(rng.randint(1, 2000))),
        ("json-truncated", json.dumps({"images": [b64(png)]}).encode()[: rng.randrange(1, 50)]),
        ("json-not-utf8", b'{"images": ["\xff\xfe\xfd"]}'),
        ("json-bom", b"\xef\xbb\xbf" + json.dumps({"images": [b64(png)]}).encode()),
        ("json-images-not-list", json.dumps({"images": {"a": b64(png)}}).encode()),
        ("json-too-many", json.dumps({"images": [b64(png)] * 17}).encode()),
        ("json-wrong-types", json.dumps({"images": [1, None, [], {"data": 5}], "top_k": "x", "lang": 3}).encode()),
        ("json-bad-base64", json.dumps({"images": ["%%%" * rng.randint(1, 100), "QUJD", "data:,", "data:image/png;base64"]}).encode()),
        ("json-options", json.dumps({"images": [b64(png)], "top_k": rng.choice([0, -1, 21, 10**9, 1.5, True]), "min_score": rng.choice([-1, 2, 1e308, "0.5"])}).encode()),
        ("json-huge-string", json.dumps({"images": ["A" * rng.choice([1, 4, 100_000, 3_000_000])]}).encode()),
        ("json-dup-keys", b'{"images": ["' + b64(png).encode() + b'"], "images": 5}'),
        ("json-escapes", b'{"images": ["\\u0041\\ud800\\udfff' + b"\\" * rng.randint(0, 3) + b'"]}'),
    ]
    name, body = rng.choice(cases)
    return name, body, "application/json"


def malformed_multipart(rng: random.Random, png: bytes) -> tuple[str, bytes, str]:
    part = b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n' + png + b"\r\n"
    bodies = {
        "mp-no-terminator": part,
        "mp-wrong-boundary": part.replace(b"--B", b"--C") + b"--C--\r\n",
        "mp-no-name": part.replace(b'name="image"; ', b"") + b"--B--\r\n",
        "mp-huge-header": part.replace(b"Content-Type: image/png", b"X-Pad: " + b"a" * 20_000) + b"--B--\r\n",
        "mp-many-headers": part.replace(b"\r\n\r\n", b"\r\n" + b"X: y\r\n" * 50 + b"\r\n", 1) + b"--B--\r\n",
        "mp-too-many-files": part * 40 + b"--B--\r\n",
        "mp-too-many-fields": b"".join(b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i for i in range(40)) + b"--B--\r\n",
        "mp-big-field": b'--B\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n' + b"9" * 2_000_000 + b"\r\n--B--\r\n",
        "mp-preamble": rng.randbytes(500) + b"\r\n" + part + b"--B--\r\n",
        "mp-random": rng.randbytes(rng.randint(1, 3000)),
        "mp-bit-flipped": _bit_flips(rng, part + b"--B--\r\n"),
        "mp-truncated": _truncate(rng, part + b"--B--\r\n"),
        "mp-lf-only": (part + b"--B--\r\n").replace(b"\r\n", b"\n"),
        "mp-empty-file": part.replace(png, b"") + b"--B--\r\n",
        "mp-filename-tricks": part.replace(b"a.png", b"../../etc/passwd\x00<script>.png") + b"--B--\r\n",
    }
    name = rng.choice(list(bodies))
    content_type = rng.choice(["multipart/form-data; boundary=B"] * 6 + ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=B; charset=x-nope", "multipart/mixed; boundary=B"])
    return name, bodies[name], content_type


def odd_content_type(rng: random.Random, png: bytes) -> tuple[str, bytes, str | None]:
    content_type = rng.choice([None, "", "text/plain", "image/png", "application/x-www-form-urlencoded", "application/json; charset=latin-1", "APPLICATION/JSON", "*/*"])
    return f"ctype-{content_type}", rng.choice([png, b"{}", b"images=1"]), content_type


