"""List replies that fit in one gRPC message.

The service cuts a page by rows; a row's size is known only once it is a message, and the limit is the
server's ``grpc.max_send_message_length`` (``Limits.max_message_bytes``): a reply past it fails with
RESOURCE_EXHAUSTED for everyone who asks for that page. So the handler converts the page's rows one by
one, stops before the row that would pass the limit, and asks the page for the token after the last row
it kept. The keyset tokens continue exactly there; nothing is lost or repeated.

A reply always holds at least one row, or a listing could never move past a big one. That row fits:
job data is at most 256 KiB of canonical JSON and an event's 64 KiB, which protobuf's ``Struct`` encodes
in at most about 5.5 times as many bytes (a list of small numbers: "0," is 2 bytes of JSON, 11 of
protobuf), well under the 4 MiB limit; ``Settings.validate`` refuses data limits for which it would not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from pipelinejobs_server.service.paging import MAX_TOKEN_LENGTH, Page

Row = TypeVar("Row")
Converted = TypeVar("Converted", bound=Message)

# Room for the reply's other fields: the next page token (ours are far shorter than the longest one
# accepted back) with its tag and length.
RESERVED_BYTES = MAX_TOKEN_LENGTH + 16
# A row in a repeated field costs its encoding plus its tag (one byte for fields 1-15) and its length
# (a varint: at most five bytes for a 32-bit length).
FIELD_OVERHEAD_BYTES = 6


def fitted(page: Page[Row], convert: Callable[[Row], Converted], limit: int) -> tuple[list[Converted], str]:
    """The page's rows as messages, as many as fit in a reply of ``limit`` bytes, and the next token."""
    budget = limit - RESERVED_BYTES
    messages: list[Converted] = []
    for row in page.rows:
        message = convert(row)
        cost = message.ByteSize() + FIELD_OVERHEAD_BYTES
        if messages and cost > budget:
            break
        messages.append(message)
        budget -= cost
    _, token = page.cut(len(messages))
    return messages, token
