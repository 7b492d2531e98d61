"""Publishable keys: the merchant widget's read-only credential (`pk_test_...`)."""
