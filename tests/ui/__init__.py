"""Tests of the dashboard (server/pipelinejobs_server/ui/), over plain HTTP."""
