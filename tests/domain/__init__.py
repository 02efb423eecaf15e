"""Tests of the pure domain (server/pipelinejobs_server/domain/)."""
