"""Tests of what the HTTP apps share (server/pipelinejobs_server/web/)."""
