"""The embedded AWS can be as slow as AWS (latency, overlapping in its threads) and throttle like IAM."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from iamrunbook.sandbox import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, EmbeddedAws
from iamrunbook.sandbox.pacing import Pacing

LATENCY_S = 0.1


def _single_attempt(aws: EmbeddedAws, service: str):
    """A client without botocore's retries: each throttle reaches the test."""
    return boto3.client(
        service,
        endpoint_url=aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _run_threads(clients, calls_each: int) -> float:
    def work(client):
        for _ in range(calls_each):
            client.get_caller_identity()

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def test_latency_delays_each_call_and_concurrent_calls_overlap(aws):
    clients = [aws.client("sts") for _ in range(8)]
    with aws.paced(latency_ms=LATENCY_S * 1000):
        one_thread = _run_threads(clients[:1], 8)
        eight_threads = _run_threads(clients, 8)
    assert one_thread >= 8 * LATENCY_S  # 8 calls one after another
    # 64 calls on 8 threads: 8 rounds of ~0.1 s. Serialized they would take 6.4 s; allow 2x slack.
    assert 8 * LATENCY_S <= eight_threads < 2 * one_thread
    assert one_thread * 8 / eight_threads > 4  # throughput grows with the threads (about 8x)
    calls = aws.calls
    assert len(calls) == 72
    assert all(call.ended - call.started >= LATENCY_S * 0.95 for call in calls)
    threaded = calls[8:]
    assert max(c.started for c in threaded[:8]) < min(c.ended for c in threaded[:8])  # they overlapped


def test_sequential_calls_have_ordered_server_times(aws, iam):
    with aws.paced(latency_ms=20, jitter_ms=10):
        iam.create_user(UserName="first")
        iam.get_user(UserName="first")
    first, second = aws.calls
    assert first.started < first.ended <= second.started < second.ended
    assert 0.02 <= first.ended - first.started < 1
    assert first.time.timestamp() == pytest.approx(first.started)


def test_pacing_can_spare_reads(aws, iam):
    with aws.paced(latency_ms=200, reads=False):
        began = time.perf_counter()
        iam.list_users()
        read = time.perf_counter() - began
        began = time.perf_counter()
        iam.create_user(UserName="slow")
        write = time.perf_counter() - began
    assert read < 0.15 <= 0.2 <= write


def test_internal_calls_are_never_paced(aws):
    internal = aws.client("sts", internal=True)
    with aws.paced(latency_ms=300, max_tps=1):
        began = time.perf_counter()
        for _ in range(5):
            internal.get_caller_identity()
        assert time.perf_counter() - began < 1.0
    assert aws.calls == [] and aws.throttled == 0


def test_rate_limit_throttles_a_burst_like_iam(aws):
    client = _single_attempt(aws, "iam")
    aws.set_pacing(max_tps=20)
    outcomes = []
    for _ in range(40):
        try:
            client.list_users()
            outcomes.append("ok")
        except ClientError as exc:
            error = exc.response["Error"]
            outcomes.append((error["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert 20 <= outcomes.count("ok") <= 24  # a full bucket of 20, plus what refills during the burst
    assert set(outcomes) == {"ok", ("Throttling", 400)}
    assert aws.throttled == outcomes.count(("Throttling", 400))
    throttled = [call for call in aws.calls if call.error_code == "Throttling"]
    assert len(throttled) == aws.throttled and not any(call.injected for call in throttled)


def test_botocore_retries_a_throttled_call(aws, iam, monkeypatch):
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.3)  # > 1/5 s refill
    aws.set_pacing(max_tps=5)
    results = [iam.list_users()["ResponseMetadata"]["RetryAttempts"] for _ in range(6)]
    assert results[:5] == [0] * 5
    assert results[5] == 1  # the sixth was throttled once, then answered
    assert [c.error_code for c in aws.calls].count("Throttling") == 1


def test_throttled_calls_never_reach_moto(aws):
    client = _single_attempt(aws, "iam")
    aws.set_pacing(max_tps=1)
    client.create_user(UserName="one")
    with pytest.raises(ClientError) as caught:
        client.create_user(UserName="two")
    assert caught.value.response["Error"]["Code"] == "Throttling"
    assert sorted(aws.iam_backend().users) == ["one"]


def test_set_pacing_returns_the_old_and_reset_restores_the_constructors(aws):
    assert aws.pacing == Pacing()
    old = aws.set_pacing(latency_ms=5, max_tps=100)
    assert old == Pacing() and aws.pacing == Pacing(latency_ms=5, max_tps=100)
    with aws.paced(jitter_ms=3) as inside:
        assert inside == Pacing(latency_ms=5, jitter_ms=3, max_tps=100)
    assert aws.pacing == Pacing(latency_ms=5, max_tps=100)
    aws.reset()
    assert aws.pacing == Pacing()


def test_constructor_pacing_and_nonsense_refused():
    server = EmbeddedAws(load_aws_managed_policies=False, latency_ms=50, jitter_ms=5, max_tps=10, pace_reads=False)
    assert server.pacing == Pacing(50, 5, 10, reads=False)
    with pytest.raises(ValueError):
        Pacing(latency_ms=-1)
    with pytest.raises(ValueError):
        Pacing(max_tps=0)
