"""sortition: a stratified sortition engine for citizens' assemblies.

The Python API is the list `__all__`: the functions the command line calls (one per command:
`write_synthetic_pool`, `resolve_quotas`, `run_check`, `run_probabilities`, `write_public_pool`,
`publish_lottery`, `draw_bundle`, `verify_bundle`, `replace_declined`, `run_invite`,
`run_respondents`, `run_simulation`, `run_demo`), the steps they are made of (`load_pool`,
`load_quotas`, `build_strata`, `load_inputs`, `check_feasibility`, `compute_lottery`,
`compute_probabilities`, `run_lottery`, `write_lottery`, `run_draw`, `prepare_replace`,
`run_replace`…), their results and the errors they raise (`InputError`: unusable input,
exit status 2; `InfeasibleError` and `SolverTimeout`: the job cannot be done, exit status 1).
Each has its own docstring. Names are loaded on first use, so `import sortition` stays cheap.
"""

from __future__ import annotations

import importlib as _importlib
import os as _os
from typing import TYPE_CHECKING

# The numerical work here is on small matrices (strata × quota groups), where BLAS threads only
# add overhead; worse, they spin-wait when the cores are busy (measured: solves 2.5× slower on a
# loaded 2-core machine). One thread unless the caller says otherwise; this takes effect only
# when sortition is imported before numpy, as the command line does.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_name, "1")

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, for type checkers and editors (tests/test_api.py)
    from .bundle.write import DrawResult, LotteryRun, draw_bundle, publish_lottery, run_draw
    from .core.errors import InfeasibleError, InputError, SolverTimeout, SortitionError
    from .inputs.load import Inputs, PublicPool, load_inputs, write_public_pool
    from .inputs.pool import Pool, load_pool
    from .inputs.quotas import Quotas, load_quotas, resolve_quotas, write_quotas
    from .inputs.strata import Strata, build_strata
    from .inputs.synth import synthesize_pool, write_pool, write_synthetic_pool
    from .lottery.check import FeasibilityReport, check_feasibility
    from .lottery.compute import (
        Lottery,
        Probabilities,
        compute_lottery,
        compute_probabilities,
        write_probabilities,
    )
    from .lottery.publish import PublishedLottery, read_lottery
    from .lottery.run import (
        CheckRun,
        ProbabilitiesRun,
        run_check,
        run_lottery,
        run_probabilities,
        write_lottery,
    )
    from .operations.demo import DemoResult, run_demo
    from .operations.replace import (
        Prepared,
        ReplaceResult,
        prepare_replace,
        replace_declined,
        run_replace,
    )
    from .operations.simulate import Simulation, run_simulation
    from .operations.verify import Verification, verify_bundle
    from .recruitment.invite import InviteResult, run_invite
    from .recruitment.respondents import RespondentsResult, run_respondents

# Where each public name is defined, in the order of the process.
_MODULES: dict[str, tuple[str, ...]] = {
    "core.errors": ("SortitionError", "InputError", "InfeasibleError", "SolverTimeout"),
    "inputs.synth": ("synthesize_pool", "write_pool", "write_synthetic_pool"),
    "inputs.pool": ("Pool", "load_pool"),
    "inputs.quotas": ("Quotas", "load_quotas", "resolve_quotas", "write_quotas"),
    "inputs.strata": ("Strata", "build_strata"),
    "inputs.load": ("Inputs", "load_inputs", "PublicPool", "write_public_pool"),
    "recruitment.invite": ("InviteResult", "run_invite"),
    "recruitment.respondents": ("RespondentsResult", "run_respondents"),
    "lottery.check": ("FeasibilityReport", "check_feasibility"),
    "lottery.compute": ("Lottery", "compute_lottery", "Probabilities", "compute_probabilities",
                        "write_probabilities"),
    "lottery.publish": ("PublishedLottery", "read_lottery"),
    "lottery.run": ("CheckRun", "run_check", "ProbabilitiesRun", "run_probabilities",
                    "run_lottery", "write_lottery"),
    "bundle.write": ("LotteryRun", "publish_lottery", "DrawResult", "draw_bundle", "run_draw"),
    "operations.verify": ("Verification", "verify_bundle"),
    "operations.replace": ("Prepared", "ReplaceResult", "replace_declined", "prepare_replace",
                           "run_replace"),
    "operations.simulate": ("Simulation", "run_simulation"),
    "operations.demo": ("DemoResult", "run_demo"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "SortitionError", "InputError", "InfeasibleError", "SolverTimeout", "synthesize_pool",
    "write_pool", "write_synthetic_pool", "Pool", "load_pool", "Quotas", "load_quotas",
    "resolve_quotas", "write_quotas", "Strata", "build_strata", "Inputs", "load_inputs",
    "PublicPool", "write_public_pool", "InviteResult", "run_invite", "RespondentsResult",
    "run_respondents", "FeasibilityReport", "check_feasibility", "Lottery", "compute_lottery",
    "Probabilities", "compute_probabilities", "write_probabilities", "PublishedLottery",
    "read_lottery", "CheckRun", "run_check", "ProbabilitiesRun", "run_probabilities",
    "run_lottery", "write_lottery", "LotteryRun", "publish_lottery", "DrawResult", "draw_bundle",
    "run_draw", "Verification", "verify_bundle", "Prepared", "ReplaceResult", "replace_declined",
    "prepare_replace", "run_replace", "Simulation", "run_simulation", "DemoResult", "run_demo",
]


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use (`import sortition` imports nothing
    else; the command line starts quickly)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sortition' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
