"""The docs as tests: README's example and the seed's story run against a real server."""
