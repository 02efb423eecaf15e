"""Waiting for a server's upkeep (storage/upkeep.py): it serves first, then builds and counts."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

UPKEEP_SERVICE = "pipelinejobs.upkeep"  # server/pipelinejobs_server/api/health.py


def upkeep_done(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=UPKEEP_SERVICE), timeout=5
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def wait_for_upkeep(address: str, timeout_s: float = 3600.0) -> float:
    """Seconds until the server at ``address`` says its upkeep is done."""
    started = time.monotonic()
    while not upkeep_done(address):
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"the upkeep of {address} did not finish in {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - started
