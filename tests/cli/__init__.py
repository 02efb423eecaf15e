"""Tests of the ``pipelinejobs`` command: the client's commands and the server's."""
