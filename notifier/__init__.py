"""notifier: multi-channel public-welfare notification service for county governments."""

__version__ = "0.1.0"
