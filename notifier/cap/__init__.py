"""OASIS CAP 1.2: the documents (``document``), alerts as notices and notices as alerts (``mapping``), and
where an alert's areas fall in the county (``areas``)."""
