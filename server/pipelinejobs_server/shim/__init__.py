"""The HTTP callback shim: executor callbacks and event messages in, gRPC calls to the server out.

It holds no job state and never touches the database; everything goes through ``AsyncJobsClient``.
``create_app`` builds the ASGI app; ``web.serving.start_app`` serves it with uvicorn on the running loop
(``pipelinejobs shim``, and ``pipelinejobs up`` beside the gRPC server and the dashboard). The dashboard
is an app of its own (pipelinejobs_server/ui). docs/callbacks.md is the user's guide.
"""

from .app import create_app
from .settings import CALLBACK_KEY_SECRET_ENV, ShimSettings

__all__ = ["CALLBACK_KEY_SECRET_ENV", "ShimSettings", "create_app"]
