"""Pure domain logic: the state machine, identities, tokens and the history hash chain.

Nothing here imports grpc or pymongo, so it can be tested without a server or a database.
"""
