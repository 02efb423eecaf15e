"""The callback shim's own refusals: what an executor's request can get wrong before it is relayed.

Each is a domain error, so its HTTP status comes from the shared table like every other answer
(web/failures.py turns any of them into the JSON error body).
"""

from __future__ import annotations

from pipelinejobs_server.domain import errors


class MalformedBody(errors.InvalidArgument):
    reason = "MALFORMED_BODY"


class UnresolvedPlaceholder(errors.InvalidArgument):
    """The executor sent the template's ``${STATUS}`` verbatim: the job definition is broken."""

    reason = "UNRESOLVED_PLACEHOLDER"


class InvalidNonce(errors.PermissionDenied):
    reason = "INVALID_NONCE"
