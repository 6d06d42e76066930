"""The clearing (DESIGN.md rules 1-4): order book, lights and market configuration in; awards,
prices, welfare and solver statistics out. Pure: no chain, no network, no files.

Model building (:mod:`.model`) is kept apart from solving (:mod:`.solve`), as Egret does;
:mod:`.clearing` decomposes the book, solves the DSO stage then the TSO stage (the chain's ranking:
DSO welfare, then TSO welfare, modes and blocks on each offer's total over both), and prices the awards.
"""

from .clearing import clear
from .inputs import BuyerKind, ClearingInput, OfferIn, RequestIn
from .results import Award, ClearingResult, SolverStats

__all__ = ["Award", "BuyerKind", "ClearingInput", "ClearingResult", "OfferIn", "RequestIn", "SolverStats", "clear"]
