"""Benchmarks of the delivery engine: ``python -m bench [NAME ...] [--quick]``."""
