"""Benchmarks: the service against its database's own limits, and the scaling properties of DESIGN 5, 6, 9.

``python -m bench`` (or ``make bench``, ~9 minutes; ``--quick`` ~1.5) starts its own embedded database,
server and shim processes in a temporary directory, measures side by side, prints a table of medians,
ranges and ratios, and writes ``bench/results.json``. docs/performance.md has a run and reads it.
It is not part of the test suite: it takes minutes and its numbers depend on the machine.
"""
