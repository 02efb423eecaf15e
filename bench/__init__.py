"""Benchmarks that guard the scaling properties of DESIGN sections 5, 6 and 9.

``python -m bench`` (or ``make bench``) starts its own embedded database and server processes in a temporary
directory, measures side by side, prints a table of ratios and writes ``bench/results.json``.
It is not part of the test suite: it takes minutes and its numbers depend on the machine.
"""
