"""The shared embedded AWS for module-scoped fixtures, which cannot use the function-scoped `aws`."""

from __future__ import annotations

import contextlib
import os

import pytest

from iamrunbook.sandbox import EmbeddedAws


@contextlib.contextmanager
def pointed_at(server: EmbeddedAws):
    """The server reset, and AWS_* pointing boto3 and notebook kernels at it until the block ends."""
    with pytest.MonkeyPatch.context() as mp:
        server.reset()
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            mp.delenv(name)
        for name, value in server.env().items():
            mp.setenv(name, value)
        yield server
