"""The PipelineJobs gRPC server: the only writer of job state."""
