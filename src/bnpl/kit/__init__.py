"""Small shared building blocks: money, ids, clock, errors, database access, pagination."""
