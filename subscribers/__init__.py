"""Residents in bulk: ``subscribers.importer`` imports rosters (CSV or XLSX) into the store.

Kept free of imports so that the other modules of this package load only what they use.
"""
