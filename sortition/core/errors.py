"""The two kinds of failure an operator must tell apart, with their exit statuses.

Exit 2: the input is unusable (a user mistake); exit 1: the input is valid but the
job cannot be done (infeasible quotas, not enough people).
"""

from __future__ import annotations

from typing import Any


class SortitionError(Exception):
    """Base class: carries the process exit status and one line per problem."""

    exit_code = 2

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class InputError(SortitionError):
    """Unusable input: bad file, bad column, bad value, bad option (exit 2)."""

    exit_code = 2


class InfeasibleError(SortitionError):
    """Valid input, but no panel can satisfy it (exit 1)."""

    exit_code = 1

    def __init__(self, problems: str | list[str], report: object | None = None) -> None:
        super().__init__(problems)
        self.report = report


class SolverTimeout(InfeasibleError):
    """The time limit ran out before the answer was certified (exit 1)."""

    def __init__(self, message: str, bound: float | None = None,
                 partial: object | None = None) -> None:
        super().__init__(message)
        self.bound = bound
        self.partial: Any = partial  # the best lottery found so far (a LotterySolution), if any
        self.lottery: Any = None  # the same as a checked Lottery, set by lottery.py
        self.result: Any = None  # and as Probabilities, set by compute_probabilities
        # what the command line prints at the limit (`lottery.run.timeout_summary`), when the
        # library knows more than the exception (people, seconds): set by run_probabilities
        self.summary: dict | None = None
