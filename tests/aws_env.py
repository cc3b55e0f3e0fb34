"""Pointing boto3 and notebook kernels at the shared embedded AWS: the `aws` fixture and the module-scoped
fixtures, which cannot use the function-scoped `aws`, do it the same way."""

from __future__ import annotations

import contextlib
import os

import pytest

from iamrunbook.sandbox import EmbeddedAws


def point_at(server: EmbeddedAws, mp: pytest.MonkeyPatch) -> EmbeddedAws:
    """The server reset, and the environment's AWS_* replaced by its own until `mp` undoes them: nothing from
    the developer's shell (AWS_PROFILE, real keys, session tokens) may leak into a test."""
    server.reset()
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        mp.delenv(name)
    for name, value in server.env().items():
        mp.setenv(name, value)
    return server


@contextlib.contextmanager
def pointed_at(server: EmbeddedAws):
    """`point_at` until the block ends."""
    with pytest.MonkeyPatch.context() as mp:
        yield point_at(server, mp)
