"""Tests of the dashboard (server/pipelinejobs_server/shim/ui/), over plain HTTP."""
