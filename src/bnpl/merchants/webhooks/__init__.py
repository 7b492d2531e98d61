"""Webhooks of the merchant service: endpoints, signed deliveries with retries, redelivery.

See `service` for how an event reaches an endpoint; `domain` for the rules.
"""
