"""Installments context: plans, schedules, late fees and delinquency."""
