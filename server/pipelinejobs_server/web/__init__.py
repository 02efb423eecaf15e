"""What the HTTP apps share: the callback shim (shim/) and the dashboard (ui/) are separate ASGI apps that
answer errors in one JSON shape (failures.py), never log a secret (logs.py), read bodies under a limit
(body.py), add the headers every answer carries (headers.py), and are served by uvicorn on a running event
loop (serving.py), with every connection bounded in time and number (connections.py), alone or mounted
together on one port (mounting.py, which ``pipelinejobs up`` uses).

Neither app touches the database or the service layer: both reach the server only over gRPC, through
the public client.
"""
