"""kyb provider."""
