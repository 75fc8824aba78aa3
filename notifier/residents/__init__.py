"""Residents' self-service: the rules behind the /subscribe and /me pages (``flow``)."""
