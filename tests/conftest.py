"""Shared fixtures: one strict embedded AWS per test session, emptied before every test.

    embedded_aws  (session)  the started EmbeddedAws; prefer `aws`, which also resets and sets the env
    aws           (function) the same server, reset, with AWS_* env pointing boto3 (and kernels) at it
    session       (function) boto3.Session(region_name="us-east-1"), built after the env is set
    iam           (function) iamrunbook.aws.clients.client(session, "iam"): standard retries, like production
    sts           (function) the same for STS
    no_backoff    (function) botocore's retries still happen, without the waits; yields the skipped delays
    legacy_account (function) seed.seed_legacy_account(iam): roles, your-username, AssumeRolesPolicy
    organization  (function) sandbox.seed_organization(aws): management + 3 member accounts in 2 OUs

A test fails at teardown if an `aws.on_mutation` hook raised (a broken invariant mid-run).
"""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from aws_env import point_at
from botocore.retries.standard import ExponentialBackoff
from hypothesis import HealthCheck, settings

from iamrunbook.aws import clients as aws_edge
from iamrunbook.sandbox import EmbeddedAws, seed, seed_organization

pytest_plugins = ["_call_audit"]  # every action the embedded servers answer must be declared


@pytest.fixture(scope="session")
def embedded_aws():
    with EmbeddedAws(load_aws_managed_policies=True) as server:
        yield server


@pytest.fixture
def aws(embedded_aws, monkeypatch):
    yield point_at(embedded_aws, monkeypatch)
    embedded_aws.raise_hook_errors()


#: Parsed service models, shared: a fresh botocore session would re-read them (~0.3 s per test).
_MODELS = botocore.session.get_session().get_component("data_loader")


@pytest.fixture
def session(aws):
    core = botocore.session.get_session()  # fresh: credentials, region and endpoint come from the env
    core.register_component("data_loader", _MODELS)
    return boto3.Session(region_name="us-east-1", botocore_session=core)


@pytest.fixture
def iam(session):
    return aws_edge.client(session, "iam")


@pytest.fixture
def sts(session):
    return aws_edge.client(session, "sts")


@pytest.fixture
def no_backoff(monkeypatch):
    """botocore's standard retries still happen, with their count; only the waiting is skipped."""
    waits: list[float] = []
    original = ExponentialBackoff.delay_amount

    def no_wait(self, context):
        waits.append(original(self, context))
        return 0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", no_wait)
    return waits


@pytest.fixture
def legacy_account(iam):
    return seed.seed_legacy_account(iam)


@pytest.fixture
def organization(aws):
    return seed_organization(aws)


# Property tests run a fixed, repeatable set of examples: the same accounts on every machine and in CI.
settings.register_profile(
    "iamrunbook", derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
settings.load_profile("iamrunbook")
