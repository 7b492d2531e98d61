"""BNPL platform."""
