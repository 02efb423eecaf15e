"""A small program written against the client's public types, checked with ``mypy --strict``."""
