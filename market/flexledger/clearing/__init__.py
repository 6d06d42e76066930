"""A market day's clearing input from the chain, and its result on chain (commitment, challenge, finality)."""
