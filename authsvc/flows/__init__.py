"""The use cases, one module per flow; each states what happens and owns its transaction."""
