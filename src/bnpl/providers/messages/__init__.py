"""messages providers (SMS, push)."""
