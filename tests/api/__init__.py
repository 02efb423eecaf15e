"""Tests of the gRPC API layer (server/pipelinejobs_server/api/), over real channels."""
