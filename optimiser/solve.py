"""Solving a built model with HiGHS, single-threaded and seeded so that a run is reproducible."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from flexledger.errors import FlexledgerError

from .model import BuiltModel

ABS_GAP = 0.5
HIGHS_OPTIONS = {"threads": 1, "random_seed": 0, "mip_feasibility_tolerance": 1e-7}


class SolverError(FlexledgerError):
    """HiGHS is missing, or failed in a way that is not an ordinary outcome."""


class InfeasibleError(SolverError):
    """HiGHS found the model infeasible (stage 2's DSO hold can be, by its tolerances)."""


class NumericalError(SolverError):
    """HiGHS ended in error (its "Solve error": its own final check found the optimum outside its
    feasibility tolerance), seen on stage 2's exact DSO hold, a row with coefficients of 10^4 and a
    right-hand side of 10^10 (the dense 10,000-offer benchmark book, seed 2)."""


@dataclass
class Solved:
    x: list[float]
    objective: float
    bound: float
    seconds: float
    optimal: bool
    status: str

    @property
    def gap(self) -> float:
        if self.objective == self.bound or not math.isfinite(self.bound):
            return 0.0
        return abs(self.bound - self.objective) / max(abs(self.objective), 1e-9)


def solve(built: BuiltModel, *, time_limit: float) -> Solved:
    solver = Highs()
    if not solver.available():
        raise SolverError("HiGHS (highspy) is not available", hint="reinstall with `make install`")
    started = time.perf_counter()
    # welfare in whole watts is an integer: an absolute gap below 1 proves the integer optimum
    # (the caller checks that the solution is in whole watts before it relies on that)
    results = solver.solve(built.model, time_limit=max(time_limit, 0.01), rel_gap=0.0, abs_gap=ABS_GAP,
                           load_solutions=False, raise_exception_on_nonoptimal_result=False,
                           solver_options=HIGHS_OPTIONS)
    seconds = time.perf_counter() - started
    status = results.termination_condition
    if results.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible):
        results.solution_loader.load_vars()
        m = built.model
        x = [pyo.value(m.x[i]) for i in range(len(built.problem.pairs))]
        objective = float(results.incumbent_objective or 0.0)
        bound = float(results.objective_bound) if results.objective_bound is not None else objective
        optimal = status == TerminationCondition.convergenceCriteriaSatisfied
        return Solved(x, objective, bound, seconds, optimal, status.name)
    if status in (TerminationCondition.maxTimeLimit,):
        # no feasible point found in time: awarding nothing is feasible, and says so
        return Solved([0.0] * len(built.problem.pairs), 0.0, float("inf"), seconds, False, status.name)
    if status == TerminationCondition.provenInfeasible:
        raise InfeasibleError("the clearing model is infeasible, which no book should make it: report this")
    if status == TerminationCondition.error:
        raise NumericalError("HiGHS ended in error (its answer failed its own feasibility check)")
    raise SolverError(f"HiGHS stopped with {status.name}")
