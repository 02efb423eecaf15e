"""Generated protobuf and gRPC stubs for pipelinejobs.v1 (do not edit; run `make protos`)."""
