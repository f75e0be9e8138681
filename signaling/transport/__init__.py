"""Bytes and sockets: client connections and the server process (listeners, keepalive, drain)."""
