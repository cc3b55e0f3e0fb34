"""The project's own errors: each names what went wrong and what is allowed, never a raw traceback."""

from __future__ import annotations


class RunbookError(Exception):
    """Base class for every error the runbook raises on purpose."""


class SpecError(RunbookError):
    """An invalid spec or parameter set. Holds every problem found, one line each."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class SafetyError(RunbookError):
    """A safety check refused the run before any change was made."""


class AwsActionError(RunbookError):
    """An AWS call failed; names the step so the operator knows where the run stopped."""

    def __init__(self, step: str, cause: Exception):
        self.step = step
        self.cause = cause
        super().__init__(f"{step} failed: {cause}")
