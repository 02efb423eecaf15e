"""Whole-system suites: several processes, faults, bad input, a browser, Node.js, deployment files."""
