"""`sogni-agent`: a command-line client of this server's REST API, for people and for agents.

It drives hosted chat, durable chat runs and durable workflows, uploads local media first (the
durable endpoints take http(s) URLs only), follows event streams and downloads the results.
"""
