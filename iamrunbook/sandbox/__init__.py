"""The sandbox: a strict embedded AWS (moto behind AWS's rules), seeding, and the demo.

Tests, the benchmark and `iamrunbook demo` use it; the product modules never import it.
"""

from .calls import ACCOUNT_ID, REGION, Call, Fault, is_mutating
from .server import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, EmbeddedAws
from .wire import REDACTED

__all__ = [
    "ACCOUNT_ID",
    "FAKE_ACCESS_KEY_ID",
    "FAKE_SECRET_ACCESS_KEY",
    "REDACTED",
    "REGION",
    "Call",
    "EmbeddedAws",
    "Fault",
    "is_mutating",
]
