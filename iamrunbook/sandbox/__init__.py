"""The sandbox: a strict embedded AWS (moto behind AWS's rules), seeding, and the demo.

Tests, the benchmark and `iamrunbook demo` use it; the product modules never import it. One server hosts
many accounts (an organization, `org.seed_organization`), IAM, STS, S3, Organizations and CloudTrail's
LookupEvents; it can be as slow as AWS and throttle like it (`pacing`).
"""

from iamrunbook.sandbox.calls import ACCOUNT_ID, REGION, Call, Fault, is_mutating
from iamrunbook.sandbox.history import seed_assume_role_history, set_credential_history
from iamrunbook.sandbox.org import seed_organization
from iamrunbook.sandbox.pacing import Pacing
from iamrunbook.sandbox.server import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, EmbeddedAws
from iamrunbook.sandbox.wire import REDACTED

__all__ = [
    "ACCOUNT_ID",
    "FAKE_ACCESS_KEY_ID",
    "FAKE_SECRET_ACCESS_KEY",
    "REDACTED",
    "REGION",
    "Call",
    "EmbeddedAws",
    "Fault",
    "Pacing",
    "is_mutating",
    "seed_assume_role_history",
    "seed_organization",
    "set_credential_history",
]
