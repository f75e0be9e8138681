"""Metrics, tracing and logs: they know no rooms and no sockets."""
