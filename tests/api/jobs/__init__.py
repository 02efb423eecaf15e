"""JobService over real gRPC (api/jobs.py), one file per part of the service."""
