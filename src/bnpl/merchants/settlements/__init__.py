"""Settlements of the merchant service: daily nets per merchant and currency, paid out.

See `service` for how a settlement comes about; `domain` for the rules.
"""
