"""Tests of the storage layer (server/pipelinejobs_server/storage/)."""
