"""bureau provider."""
