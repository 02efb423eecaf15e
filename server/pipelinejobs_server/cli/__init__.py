"""The server's commands, contributed to ``pipelinejobs`` through the ``pipelinejobs.commands`` entry points
(pyproject.toml), so the client's command line never names the server package:

- ``up``: the embedded database, the gRPC server, the callback shim and the dashboard (up.py);
- ``serve``: the gRPC server against an existing MongoDB (serve.py);
- ``shim``: the HTTP callback shim alone, in front of a running server (shim.py);
- ``dashboard``: the read-only dashboard alone (dashboard.py);
- ``doctor``: check a whole database (doctor.py).

Each module holds one ``COMMAND`` (``pipelinejobs_client.cli.plugins.Command``); options.py has what
they share. Settings come from the flags first and the injected environment second, never from
``os.environ`` directly, so every command can be run in-process by a test with a dict.
"""
