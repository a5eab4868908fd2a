"""Media: the asset store, safe fetching of remote media, and the backends that make media."""
