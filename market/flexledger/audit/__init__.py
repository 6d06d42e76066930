"""The auditor: a market day's clearing, settlements, money and baselines re-derived from public chain data."""
