"""Standard baselines after the market: sellers' committed baseline files, disputes, challenges, corrections."""
