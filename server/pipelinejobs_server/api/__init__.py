"""The gRPC API layer: servicers, error mapping, conversions and the server factory."""
