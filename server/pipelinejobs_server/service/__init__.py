"""The service layer: validation, authorization and the state machine. The only way state changes."""
