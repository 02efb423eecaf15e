"""Tests of the client library (pipelinejobs_client/)."""
