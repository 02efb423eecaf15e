"""Tests of the HTTP callback shim (server/pipelinejobs_server/shim/)."""
