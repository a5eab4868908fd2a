"""A self-hostable server for the Sogni Intelligence API."""

__version__ = "0.1.0"
