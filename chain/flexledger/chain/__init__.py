"""The chain toolkit: compiling, the local node, deployment, typed clients, reverts and events.

It holds no market rules: those live in the contracts and in :mod:`flexledger.rules`.
"""
