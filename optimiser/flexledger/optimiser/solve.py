"""Solving a built model with HiGHS, single-threaded and seeded so that a run is reproducible: a
pyomo model (:mod:`.model`) through pyomo's HiGHS interface, or a model built for HiGHS directly
(:mod:`.highs_build`) through highspy; the same options, outcomes and errors either way."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.common.tee import capture_output
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from flexledger.errors import FlexledgerError

from .highs_build import HighsModel
from .model import BuiltModel

log = logging.getLogger(__name__)

ABS_GAP = 0.5
# RINS and RENS (sub-MIP heuristics) took most of the time of the dense day's large stage-2
# models (49 s of CPU of a 10,000-pair model against 28 s without them, the same optimum) and
# a tenth of the ordinary days'; so did the root reduced-cost heuristic (its sub-MIPs took 136 s
# of a 200 s run of an 18,764-pair stage-2 model, proven optimal in 29 s without it once stage 1's
# bounds were given); the proof of optimality depends on none of them
HIGHS_OPTIONS = {"threads": 1, "random_seed": 0, "mip_feasibility_tolerance": 1e-7,
                 "mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
                 "mip_heuristic_run_root_reduced_cost": False}


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


def solve(built: BuiltModel | HighsModel, *, time_limit: float, start: dict[int, int] | None = None) -> Solved:
    """``start``: a feasible point to begin from, the pairs' watts by index (the others 0); used
    by the HiGHS build only, and only as HiGHS's first incumbent (the proof does not rest on it)."""
    if isinstance(built, HighsModel):
        return _solve_highs(built, time_limit=time_limit, start=start)
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


def _new_highs(highspy: Any) -> Any:
    """A Highs instance. The first in a process prints HiGHS's banner on the C standard output,
    before any option can silence it: that one is made with the output captured (as pyomo's
    interface captures every run), so that the CLI's output (``--json``) stays clean."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return highspy.Highs()
    with capture_output(capture_fd=True):
        h = highspy.Highs()
    _BANNER_SHOWN = True
    return h


_BANNER_SHOWN = False


def _loaded(built: HighsModel, time_limit: float, *, relaxed: bool) -> tuple[Any, Any]:
    """highspy and a Highs instance holding the model (``relaxed``: every column continuous)."""
    try:
        import highspy
    except ImportError as e:  # pragma: no cover - highspy is a dependency
        raise SolverError("HiGHS (highspy) is not available", hint="reinstall with `make install`") from e
    h = _new_highs(highspy)
    h.setOptionValue("output_flag", False)
    for key, option in {**HIGHS_OPTIONS, "time_limit": max(time_limit, 0.01), "mip_rel_gap": 0.0,
                        "mip_abs_gap": ABS_GAP}.items():
        h.setOptionValue(key, option)
    integrality = np.zeros_like(built.integrality) if relaxed else built.integrality
    status = h.passModel(built.columns, len(built.row_lower), len(built.index), int(highspy.MatrixFormat.kColwise),
                         int(highspy.ObjSense.kMaximize), 0.0, built.col_cost, built.col_lower, built.col_upper,
                         built.row_lower, built.row_upper, built.matrix_start, built.index, built.value, integrality)
    if status == highspy.HighsStatus.kError:
        raise SolverError("HiGHS refused the clearing model, which no book should make it do: report this")
    return highspy, h


def relaxation_duals(built: HighsModel, *, time_limit: float) -> list[float] | None:
    """The row duals of the model's LP relaxation at its optimum, or None when HiGHS did not
    reach one (in time): what :func:`.fixing.proven_bounds` reads."""
    highspy, h = _loaded(built, time_limit, relaxed=True)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal or not h.getInfo().dual_solution_status:
        return None
    return list(h.getSolution().row_dual)


def _solve_highs(built: HighsModel, *, time_limit: float, start: dict[int, int] | None = None) -> Solved:
    """As pyomo's HiGHS interface reads an outcome (``pyomo.contrib.solver.solvers.highs``), so
    that both builds end in the same statuses and errors."""
    started = time.perf_counter()
    highspy, h = _loaded(built, time_limit, relaxed=False)
    if start:
        point = highspy.HighsSolution()
        point.col_value = built.point(start).tolist()
        point.value_valid = True
        if h.setSolution(point) != highspy.HighsStatus.kOk:
            log.debug("HiGHS refused the starting point; solving without it")
    h.run()
    seconds = time.perf_counter() - started
    model_status = h.getModelStatus()
    info = h.getInfo()
    pairs = len(built.problem.pairs)
    if info.primal_solution_status == 2:  # a feasible solution (0: none, 1: infeasible)
        x = list(h.getSolution().col_value[:pairs])
        objective = float(info.objective_function_value)
        optimal = model_status == highspy.HighsModelStatus.kOptimal
        # solved as an LP (no node count): its bound is its optimum
        bound = objective if info.mip_node_count == -1 else float(info.mip_dual_bound)
        return Solved(x, objective, bound, seconds, optimal, _STATUS_NAMES.get(model_status.name, "unknown"))
    if model_status == highspy.HighsModelStatus.kTimeLimit:
        return Solved([0.0] * pairs, 0.0, float("inf"), seconds, False, "maxTimeLimit")
    if model_status == highspy.HighsModelStatus.kInfeasible:
        raise InfeasibleError("the clearing model is infeasible, which no book should make it: report this")
    if model_status.name in _ERRORS:
        raise NumericalError("HiGHS ended in error (its answer failed its own feasibility check)")
    raise SolverError(f"HiGHS stopped with {_STATUS_NAMES.get(model_status.name, model_status.name)}")


# HiGHS's model statuses by the names pyomo gives them (TerminationCondition), which SolverStats reports
_STATUS_NAMES = {
    "kOptimal": "convergenceCriteriaSatisfied", "kInfeasible": "provenInfeasible", "kTimeLimit": "maxTimeLimit",
    "kUnboundedOrInfeasible": "infeasibleOrUnbounded", "kUnbounded": "unbounded", "kObjectiveBound": "objectiveLimit",
    "kObjectiveTarget": "objectiveLimit", "kIterationLimit": "iterationLimit", "kSolutionLimit": "iterationLimit",
    "kLoadError": "error", "kModelError": "error", "kPresolveError": "error", "kSolveError": "error",
    "kPostsolveError": "error",
}
_ERRORS = {name for name, condition in _STATUS_NAMES.items() if condition == "error"}
