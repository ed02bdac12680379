"""authsvc: a gRPC authentication service (sign-up, sign-in, session tokens)."""
