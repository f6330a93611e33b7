"""The daemon's Unix socket: the line protocol, its commands and the status it sends
(protocol), the server in the daemon (server) and the client the web and tools use (client).

May import: device.core, device.config.
"""
