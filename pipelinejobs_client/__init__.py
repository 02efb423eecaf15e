"""The PipelineJobs client: typed gRPC stubs for pipelinejobs.v1 (``pipelinejobs_client.api.v1``)."""
