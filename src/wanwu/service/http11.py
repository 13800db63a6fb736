"""Uvicorn's HTTP/1.1 protocol (h11), answering the requests it refuses itself in the service's JSON error shape.

Uvicorn answers a request it cannot parse (a malformed request line, headers over h11's 16 KB
limit, a broken chunked body) with a plain-text 400 before the app ever sees it. This subclass
keeps Uvicorn's behaviour (400, ``Connection: close``) and only changes the body. It overrides
``send_400_response``, an internal method of Uvicorn's ``H11Protocol``;
``tests/service/test_hostile_http.py`` fails if a Uvicorn release renames it.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _body(message: str) -> bytes:
    return json.dumps({"error": {"code": "bad_request", "message": message}}).encode()


class JsonErrorsH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = _body(f"{msg.rstrip('.')}: the request line, headers (16 KB at most) or chunked framing is malformed")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        response = h11.Response(status_code=400, headers=headers, reason=b"Bad Request")
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
