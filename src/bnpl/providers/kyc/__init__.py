"""kyc provider."""
