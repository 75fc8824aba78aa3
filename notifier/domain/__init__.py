"""The ground floor: enums, errors, validation of contact points and the pydantic models.

Nothing here imports anything else of ours.
"""
