"""Typed errors.

Two families matter to the agent: errors a *step* can raise (tools, routing, permissions) and
errors a *model call* can raise (providers). Each says whether it is ``transient`` — worth
retrying — so the recovery handler never has to guess from a message string.

:class:`InputError` is different: it is the user's bad input (a suite, a fault plan, a cassette)
and becomes one line naming the file, the place and the problem, and exit code 2.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a file or the command line: ``file: place: problem``."""

    def __init__(self, file: str, place: str, problem: str) -> None:
        self.file, self.place, self.problem = file, place, problem
        super().__init__(f"{file}: {place}: {problem}" if place else f"{file}: {problem}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str, str]]:
        # Pickled by its parts, so an error raised in a sweep's worker process arrives whole.
        return (type(self), (self.file, self.place, self.problem))


class InputWarning(UserWarning):
    """Input that is probably a mistake but may be meant (``file: place: problem``): one line, the run goes on.

    Raised with :func:`warnings.warn`; the CLI prints it as ``agentlab: warning: FILE: PLACE: PROBLEM``.
    """

    def __init__(self, file: str, place: str, problem: str) -> None:
        self.file, self.place, self.problem = file, place, problem
        super().__init__(f"{file}: {place}: {problem}" if place else f"{file}: {problem}")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C while a run was writing ``run_dir``: the run is unfinished there and ``--resume`` continues it.

    A :class:`KeyboardInterrupt` still (code that stops on Ctrl-C keeps stopping); the CLI turns it into one line
    saying how to resume, and exit code 130.
    """

    def __init__(self, run_dir: object) -> None:
        self.run_dir = run_dir
        super().__init__(f"interrupted: the run in {run_dir} is unfinished")


class WorkersFailed(RuntimeError):
    """A worker process of a local pool died (killed, out of memory, a crash in C): what it ran has no result.

    The pool raises it in place of ``BrokenProcessPool``; the CLI turns it into one line and exit 3 (neither a
    finding, 1, nor bad input, 2): a sweep keeps its finished cells, a chaos search concluded nothing.
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"a worker process died ({type(cause).__name__}: {cause})")


class AgentError(Exception):
    """Base of every error the agent handles at run time.

    ``transient``: retrying may succeed. ``ambiguous``: the call may have taken effect although it
    reported failure (a timeout after the side effect, a garbled response), so a non-idempotent
    call must not simply be repeated.
    """

    transient: bool = False
    ambiguous: bool = False

    @property
    def type_name(self) -> str:
        return type(self).__name__


# --- step errors -------------------------------------------------------------------------------


class StepError(AgentError):
    """A step (tool call) did not produce a result."""


class UnknownTool(StepError):
    pass


class InvalidArguments(StepError):
    """The model's arguments failed validation (or were not JSON); the tool never ran."""


class PermissionDenied(StepError):
    pass


class ToolFailed(StepError):
    """The tool ran and refused or failed for a reason retrying will not fix."""


class ToolTransientError(StepError):
    """An upstream hiccup (a 503 from an external API, a dropped connection): retry."""

    transient = True


class ToolTimeout(StepError):
    transient = True
    ambiguous = True


class ToolMalformedResult(StepError):
    """The tool's response could not be read; whatever it did, it may have done."""

    transient = True
    ambiguous = True


class ToolRateLimited(StepError):
    """This agent's own rate limit for the tool is exhausted for longer than it will wait."""

    transient = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpen(StepError):
    """The tool's circuit breaker is open: the call was not made.

    ``retry_after`` is the time until the breaker lets a probe through. It is transient (worth
    waiting for) only when the caller has no fallback to degrade to instead.
    """

    def __init__(self, message: str, retry_after: float | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.transient = transient


class AlreadyAttempted(StepError):
    """A non-idempotent action with these arguments already ran (or may have): it is not repeated."""


# --- budget --------------------------------------------------------------------------------------


class BudgetExceeded(AgentError):
    def __init__(self, scope: str, estimate_usd: float, spent_usd: float, limit_usd: float) -> None:
        self.scope, self.estimate_usd, self.spent_usd, self.limit_usd = scope, estimate_usd, spent_usd, limit_usd
        super().__init__(
            f"{scope} budget ${limit_usd:.4f} would be exceeded "
            f"(spent ${spent_usd:.4f}, next call up to ${estimate_usd:.4f})"
        )


# --- model errors --------------------------------------------------------------------------------


class ModelError(AgentError):
    """A model call failed. ``attempts``: HTTP requests the client made before giving up (SDK retries)."""

    attempts: int = 1


class RateLimited(ModelError):
    transient = True

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Overloaded(ModelError):
    transient = True


class ProviderServerError(ModelError):
    transient = True


class ModelTimeout(ModelError):
    transient = True


class ModelCircuitOpen(ModelError):
    """The model endpoint's circuit breaker is open: the call was not made."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelUnavailable(ModelError):
    """No model could answer: every tier tried failed or had its breaker open."""


class ModelConnectionError(ModelError):
    transient = True


class BadRequest(ModelError):
    pass


class AuthError(ModelError):
    pass


class NotFound(ModelError):
    pass


class ContentFiltered(ModelError):
    """The provider's content filter withheld the answer (Azure OpenAI: a choice with no message).

    Not transient: the same request meets the same filter. The agent treats it as any other
    non-transient model error (another tier, or the episode ends with the error).
    """


class MalformedResponse(ModelError):
    """The provider's body could not be parsed; retrying may get a good one."""

    transient = True


# --- replay --------------------------------------------------------------------------------------


class ReplayMismatch(LookupError):
    """A replayed request that no unplayed recorded interaction matches: the run left its cassettes.

    Deliberately not an :class:`AgentError`: the agent must not retry it or route around it as a
    flaky provider. It ends the run, and the CLI prints its one-line message (exit code 2).
    """
