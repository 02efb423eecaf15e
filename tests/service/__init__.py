"""Tests of the service layer (server/pipelinejobs_server/service/)."""
