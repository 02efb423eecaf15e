"""Request bodies read under a size limit, for every HTTP endpoint that takes one.

The limit is enforced before the body is read: a declared ``Content-Length`` over it is refused at
once, and a chunked body is refused as soon as the bytes read pass it, so a 10 MB post never sits in
memory.
"""

from __future__ import annotations

from starlette.requests import Request

from pipelinejobs_server.domain import errors


class BodyTooLarge(errors.DataTooLarge):
    reason = "BODY_TOO_LARGE"


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {int(declared)} bytes; the limit is {limit}", limit=str(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=str(limit))
        chunks.append(chunk)
    return b"".join(chunks)
