"""Settling awarded offers: one offer's inputs, a whole day, the chain's records, debts, claim bonds."""
