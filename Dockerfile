# syntax=docker/dockerfile:1
# The gRPC server image: `pipelinejobs serve` against the MongoDB named by MONGODB_URI.
# The embedded database is not included; production uses a real MongoDB replica set.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipelinejobs_client ./pipelinejobs_client
COPY server ./server
# Wheels for the project and everything it needs, so the final stage installs offline and has no compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[server]'

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin pipelinejobs
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'pipelinejobs[server]' && rm -rf /wheels
USER 10001
ENV PIPELINEJOBS_GRPC_HOST=0.0.0.0 \
    PIPELINEJOBS_GRPC_PORT=50051 \
    PYTHONUNBUFFERED=1
EXPOSE 50051
# The check speaks TLS when the container's environment says how, as every client does: for a TLS
# server set PIPELINEJOBS_TLS_CA_FILE (the CA that signed the server's certificate), and when clients
# must present certificates PIPELINEJOBS_TLS_CLIENT_CERT_FILE and _KEY_FILE; PIPELINEJOBS_TLS_SERVER_NAME
# if the certificate does not name 127.0.0.1 (e.g. the service's DNS name).
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["pipelinejobs", "health", "--server", "127.0.0.1:50051"]
# SIGTERM lets in-flight calls finish before the process exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pipelinejobs"]
CMD ["serve"]
