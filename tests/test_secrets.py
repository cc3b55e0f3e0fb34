"""No secret ever leaves the account or the environment into what the runbook writes or says.

Secrets are planted where a careless runbook would pick them up: the environment (a session token, a
secret access key, an access key id) and the account (console passwords, access keys and a virtual MFA
device, whose secrets and seed the test captures as AWS hands them out). Then the demo runs, and every
notebook runs through the CLI (the chain with apply, then 05_offboard_user with apply and
revoke_role_sessions on a user holding keys and a password, then 06_access_review signed by a reviewer).
Every file of every run folder, the captured stdout/stderr, the log records and the embedded server's call
log are scanned: no secret in any form, and outside the call log access key ids only masked.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import urllib.parse
from pathlib import Path

import pytest

from iamrunbook.aws.clients import mask_key_id
from iamrunbook.base.log import logger as runbook_logger
from iamrunbook.base.names import policy_arn
from iamrunbook.cli import cli
from iamrunbook.sandbox import REDACTED, EmbeddedAws, demo, seed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
#: an unmasked AWS key id (long-term AKIA, temporary ASIA) anywhere in the output
KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
#: what the run folders hold; the scan must have met each kind at least once
EXPECTED_SUFFIXES = {".ipynb", ".html", ".json", ".csv", ".tfvars", ".tf"}


def marker(label: str) -> str:
    """A distinctive value, random per run (no secret literal in the repository)."""
    return f"{label}-{secrets.token_hex(12)}"


def forms(secret: str) -> set[str]:
    """The ways a value can be written into an artifact: as is, HTML-, JSON- or URL-escaped."""
    return {secret, html.escape(secret), json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe="")}


def capture_access_keys(iam, found: dict[str, str]) -> None:
    """Record {access key id: secret} of every key this client creates, as AWS hands it out."""

    def keep(parsed, **_):
        key = parsed.get("AccessKey") or {}
        if key.get("SecretAccessKey"):
            found[key["AccessKeyId"]] = key["SecretAccessKey"]

    iam.meta.events.register("after-call.iam.CreateAccessKey", keep)


def capture_mfa_seeds(iam, found: list[str]) -> None:
    """Record the Base32 seed of every virtual MFA device this client creates (a secret like a password)."""

    def keep(parsed, **_):
        seed_value = (parsed.get("VirtualMFADevice") or {}).get("Base32StringSeed")
        if seed_value:
            found.append(seed_value.decode() if isinstance(seed_value, bytes) else seed_value)

    iam.meta.events.register("after-call.iam.CreateVirtualMFADevice", keep)


def corpus(folders: list[Path]) -> tuple[dict[str, str], set[str]]:
    """{path: text} of every file under the folders, and the file suffixes seen."""
    texts: dict[str, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return texts, {Path(p).suffix for p in texts}


def leaks(texts: dict[str, str], secret_values: dict[str, str], key_ids: list[str] | None) -> list[str]:
    """Every (what, where) a secret value or an unmasked key id appears; empty when clean.

    `key_ids` None: key ids are not looked for (the server's call log keeps them, as CloudTrail does).
    """
    found = []
    for where, text in texts.items():
        for label, value in secret_values.items():
            if any(form in text for form in forms(value)):
                found.append(f"{label} in {where}")
        if key_ids is None:
            continue
        for key_id in key_ids:
            if key_id in text:
                found.append(f"unmasked access key id {key_id[:4]}... in {where}")
        found += [f"unmasked key id {m[:4]}... in {where}" for m in KEY_ID.findall(text)]
    return found


@pytest.fixture
def env_secrets(monkeypatch) -> dict[str, str]:
    """Secret-looking credentials in the environment a runbook could echo (set after `aws`'s env)."""
    planted = {
        "AWS_SESSION_TOKEN": marker("session-token"),
        "AWS_SECRET_ACCESS_KEY": marker("env-secret-access-key"),
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
    }
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    return planted


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger=runbook_logger.name)
    return caplog


def test_the_scan_finds_what_it_looks_for(tmp_path):
    secret = "abc+/def<" + secrets.token_hex(8)
    key_id = "AKIA" + secrets.token_hex(8).upper()
    (tmp_path / "a.html").write_text(f"<td>{html.escape(secret)}</td>")
    (tmp_path / "b.json").write_text(json.dumps({"k": key_id[:10] + "\n" + key_id[10:]}))
    (tmp_path / "c.txt").write_text(f"masked {mask_key_id(key_id)}")
    texts, suffixes = corpus([tmp_path])
    assert suffixes == {".html", ".json", ".txt"}
    assert leaks(texts, {"secret": secret}, [key_id]) == [f"secret in {tmp_path / 'a.html'}"]
    (tmp_path / "d.csv").write_text(f"id\n{key_id}\n")
    found = leaks(corpus([tmp_path])[0], {}, [key_id])
    assert len(found) == 2 and all("d.csv" in f for f in found)


@pytest.mark.e2e
def test_the_demo_leaks_no_secret(tmp_path, monkeypatch, capsys, logs, env_secrets):
    password = marker("Demo-Pw")
    monkeypatch.setattr(seed, "new_password", lambda length=24: password)
    keys: dict[str, str] = {}
    mfa_seeds: list[str] = []
    servers: list[EmbeddedAws] = []

    def seed_and_capture(iam, **kwargs):
        capture_access_keys(iam, keys)
        capture_mfa_seeds(iam, mfa_seeds)
        return seed.seed_demo_account(iam, **kwargs)

    class RecordedAws(EmbeddedAws):
        def start(self):
            servers.append(self)
            return super().start()

    monkeypatch.setattr(demo, "seed_demo_account", seed_and_capture)
    monkeypatch.setattr(demo, "EmbeddedAws", RecordedAws)
    lines: list[str] = []

    assert demo.run_demo(cli.main, out=tmp_path / "runs", echo=lines.append) == 0

    assert len(keys) == len(mfa_seeds) == len(servers) == 1  # the demo's own key and MFA device, captured
    captured = capsys.readouterr()
    texts, suffixes = corpus([tmp_path / "runs"])
    assert len({Path(p).parent for p in texts}) >= 2  # the apply run and the drift check
    assert suffixes >= EXPECTED_SUFFIXES
    texts["demo echo"] = "\n".join(lines)
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    texts["log records"] = logs.text + "\n".join(r.getMessage() for r in logs.records)
    secret_values = {"demo password": password, "demo MFA seed": mfa_seeds[0]}
    secret_values.update({f"secret of {k[:4]}": s for k, s in keys.items()})
    secret_values.update(env_secrets)
    del secret_values["AWS_ACCESS_KEY_ID"]

    assert leaks(texts, secret_values, [*keys, env_secrets["AWS_ACCESS_KEY_ID"]]) == []
    assert leaks({"demo server call log": repr(servers[0].calls)}, secret_values, None) == []
    assert "your-username" in texts["demo echo"] and servers[0].calls  # the scan read real content


@pytest.mark.e2e
def test_every_notebook_leaks_no_secret(aws, iam, tmp_path, monkeypatch, capsys, logs, env_secrets):
    passwords = {"owner password": marker("Owner-Pw"), "leaver password": marker("Leaver-Pw")}
    monkeypatch.setattr(seed, "new_password", lambda length=24: passwords["owner password"])
    keys: dict[str, str] = {}
    mfa_seeds: list[str] = []
    capture_access_keys(iam, keys)
    capture_mfa_seeds(iam, mfa_seeds)
    # The demo account through a logged client (its password is in the call log, redacted) ...
    made = seed.seed_demo_account(iam)
    # ... plus a leaver outside the spec with two keys and a console password.
    iam.create_user(UserName="leaver")
    iam.create_login_profile(UserName="leaver", Password=passwords["leaver password"], PasswordResetRequired=True)
    leaver_keys = [iam.create_access_key(UserName="leaver")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    assert len(keys) == 3  # the owner's key and the leaver's two, each with its secret
    out = tmp_path / "runs"

    chain = cli.main(["run", "-f", str(EXAMPLE), "--apply", "--out", str(out)])
    # A role by hand (drift the chain would have detached), so the offboarding has role sessions to revoke.
    iam.attach_user_policy(UserName="leaver", PolicyArn=policy_arn(made["account_id"], "AssumeDataEngineerRolePolicy"))
    offboard = cli.main(
        ["run", "05_offboard_user", "-f", str(EXAMPLE), "--apply", "-p", "offboard_user", "leaver"]
        + ["-p", "revoke_role_sessions", "true", "--out", str(out)]
    )

    review = cli.main(["run", "06_access_review", "-f", str(EXAMPLE), "-p", "reviewer", "Auditor", "--out", str(out)])

    assert (chain, offboard, review) == (0, 0, 0)
    assert "leaver" not in aws.iam_backend().users
    captured = capsys.readouterr()
    texts, suffixes = corpus([out])
    assert suffixes >= EXPECTED_SUFFIXES
    assert {Path(p).name for p in texts} >= {"run.json", "offboard_leaver_credentials.json", "offboard.json",
                                            "access_review.json", "access_review.csv", "reviewed_iam_users.yaml"}
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    texts["log records"] = logs.text + "\n".join(r.getMessage() for r in logs.records)
    assert len(mfa_seeds) == 1
    secret_values = {**passwords, "owner MFA seed": mfa_seeds[0]}
    secret_values.update({f"secret of {k[:4]}": s for k, s in keys.items()})
    secret_values.update(env_secrets)
    del secret_values["AWS_ACCESS_KEY_ID"]

    assert leaks(texts, secret_values, [*keys, env_secrets["AWS_ACCESS_KEY_ID"]]) == []
    assert leaks({"server call log": repr(aws.calls)}, secret_values, None) == []

    # Not vacuous: the offboarding record names each key, masked; the log kept the calls, redacted.
    record = texts[next(p for p in texts if p.endswith("offboard_leaver_credentials.json"))]
    for key_id in leaver_keys:
        assert mask_key_id(key_id) in record
    logins = [c for c in aws.calls if c.action == "CreateLoginProfile"]
    assert len(logins) == 2 and all(c.params["Password"] == REDACTED for c in logins)
    revoked = [c.params["RoleName"] for c in aws.mutating_calls() if c.action == "PutRolePolicy"]
    assert revoked == ["DataEngineerRole"]  # the leaver's role sessions were revoked


def test_recent_events_show_access_key_resources_masked(aws, iam, session):
    """CloudTrail names an access key as a resource in full (CreateAccessKey, UpdateAccessKey, ...); the
    offboarding's events table must not. (The embedded trail attributes every call to its caller, moto.)"""
    from iamrunbook.flows.offboard import recent_events

    iam.create_user(UserName="keyholder")
    key_id = iam.create_access_key(UserName="keyholder")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="keyholder", AccessKeyId=key_id, Status="Inactive")

    status, table = recent_events(session, "moto")

    assert status.startswith("3 write events by moto")
    shown = table.to_string() + table.to_csv() + table.to_html()
    assert key_id not in shown and KEY_ID.search(shown) is None
    assert mask_key_id(key_id) in table["resources"].iloc[0]  # UpdateAccessKey, newest first
    assert "keyholder" in table["resources"].iloc[0]


@pytest.mark.e2e
def test_a_fan_out_leaks_no_assumed_credentials(aws, organization, tmp_path, capsys, logs, env_secrets):
    """`run --accounts --apply` across the seeded Organization: the temporary credentials each member's role
    handed out (read from the embedded STS's own state, as AWS issued them) and the caller's own planted ones
    are in no run folder, summary, output or log; the assumed key ids not even unmasked."""
    from moto.sts.models import sts_backends
    from test_accounts import seeded_project

    from iamrunbook.cli import fanout

    out = tmp_path / "runs"
    assert cli.main(["run", "--accounts", str(seeded_project(aws, organization, tmp_path)), "--apply",
                     "--out", str(out)]) == 0  # fmt: skip

    (parent,) = [p for p in out.iterdir() if p.is_dir()]
    issued = [
        role
        for account in list(sts_backends)
        for role in sts_backends[account]["aws"].assumed_roles
        if role.session_name == f"iamrunbook-{parent.name}"
    ]
    members = sorted(m["id"] for m in organization["accounts"].values())
    assert sorted(r.role_arn.split(":")[4] for r in issued) == members  # one session per member, each captured
    captured = capsys.readouterr()
    texts, suffixes = corpus([out])
    assert suffixes >= EXPECTED_SUFFIXES
    assert {Path(p).name for p in texts} >= {fanout.SUMMARY_JSON, fanout.SUMMARY_CSV, "run.json"}
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    texts["log records"] = logs.text + "\n".join(r.getMessage() for r in logs.records)
    secret_values = {f"secret of {r.access_key_id[:4]}": r.secret_access_key for r in issued}
    secret_values.update({f"session token of {r.access_key_id[:4]}": r.session_token for r in issued})
    secret_values.update(env_secrets)
    del secret_values["AWS_ACCESS_KEY_ID"]

    assert leaks(texts, secret_values, [*(r.access_key_id for r in issued), env_secrets["AWS_ACCESS_KEY_ID"]]) == []
    assert leaks({"server call log": repr(aws.calls)}, secret_values, None) == []
    # Not vacuous: every member's record names the assumed-role session the credentials belong to.
    records_text = [t for p, t in texts.items() if p.endswith("run.json")]
    assert len(records_text) == 3 and all(f"/iamrunbook-{parent.name}" in t for t in records_text)
