"""Tests of ``pipelinejobs doctor`` (server/pipelinejobs_server/doctor)."""
