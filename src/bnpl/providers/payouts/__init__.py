"""payouts provider."""
