"""gateway provider."""
