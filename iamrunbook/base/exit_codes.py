"""The exit codes of `iamrunbook`, after `terraform plan -detailed-exitcode`: scheduled jobs depend on them.

0 converged; 2 a plan-only run with changes an apply would make; 1 an error, a refused safety check, or a problem
no apply can fix (runs/outcome.py decides which). 75 (sysexits' EX_TEMPFAIL): AWS throttled the run or could not
be reached, and nothing else went wrong, so the same command run again later may succeed; a scheduler retries 75
and only 75 (a 1 needs a person).
"""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PENDING = 2
EXIT_TRANSIENT = 75

#: AWS error codes that say "later", not "never": throttling and a service briefly unavailable
TRANSIENT_ERROR_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "ServiceUnavailable", "ServiceUnavailableException",
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
})  # fmt: skip
#: botocore's names for a network that did not answer (an exception's class name, as a failed cell records it)
TRANSIENT_EXCEPTIONS = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ConnectionError", "HTTPClientError",
})  # fmt: skip


def is_transient_name(name: str) -> bool:
    """True when an AWS error code or a botocore exception's class name means: try again later."""
    return name in TRANSIENT_ERROR_CODES or name in TRANSIENT_EXCEPTIONS
