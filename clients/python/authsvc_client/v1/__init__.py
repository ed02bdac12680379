"""Generated from protos/authsvc/v1 by `make gen` (never edit by hand)."""
