"""Application-layer parsers: one module per protocol, each pure, bounded and total (any
input gives a value or ``None``, never an exception)."""
