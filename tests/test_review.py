"""06, the access review: last use from one CloudTrail sweep, recommendations as a proposed spec, the
reviewer's decisions and sign-off, the chain carrying them out, and the next review showing them done.

The account is the example spec applied to the strict embedded AWS, then given a past with the sandbox's
history helpers (users made 300 days ago, keys and passwords used or not, AssumeRole events back-dated).
Most tests drive the flow in-process (`open_runbook`); the last ones run the notebook as a scheduled job
does (runner / CLI, real kernels) and read the server's call log.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from iamrunbook.aws.cloudtrail import _assumption, assume_role_sweep
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base import records
from iamrunbook.base.errors import SpecError
from iamrunbook.cli import cli, runner
from iamrunbook.core import review
from iamrunbook.core.plan import make_plan
from iamrunbook.core.review import RoleUse
from iamrunbook.core.spec import load_spec
from iamrunbook.core.terraform import load_tfvars
from iamrunbook.flows import review as review_view
from iamrunbook.flows.apply import apply_plan
from iamrunbook.flows.session import open_runbook
from iamrunbook.runs import audit
from iamrunbook.sandbox import ACCOUNT_ID
from iamrunbook.sandbox.history import ago, seed_assume_role_history, set_credential_history
from iamrunbook.sandbox.seed import new_password, seed_roles
from iamrunbook.ui.review import ReviewWidget
from iamrunbook.ui.start import Widgets

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
OWNER, ALICE, BOB = "your-username", "alice@example.com", "bob@example.com"


def backdate(aws, user: str, days: float) -> None:
    """moto makes every user 'now'; a review leaves users made within the period alone."""
    aws.iam_backend().users[user].create_date = ago(days)


@pytest.fixture
def account(aws, iam, sts):
    """The example spec applied; the owner signs in and uses a 100-day-old key, alice only her key, bob
    nothing at all; a stranger outside the spec. AssumeRole: the owner's admin 3 days ago and data_engineer
    20, infrastructure_admin 120 (past CloudTrail's 90); alice's infrastructure_admin 5, data_engineer 95."""
    seed_roles(iam, account_id=ACCOUNT_ID)
    apply_plan(iam, make_plan(load_spec(iam_users_file=EXAMPLE), read_inventory(iam, sts)))
    iam.create_login_profile(UserName=OWNER, Password=new_password())
    iam.create_access_key(UserName=OWNER)
    set_credential_history(aws, OWNER, password_last_used_days_ago=2, password_changed_days_ago=200,
                           key_created_days_ago=100, key_last_used_days_ago=1)  # fmt: skip
    iam.create_access_key(UserName=ALICE)
    set_credential_history(aws, ALICE, key_created_days_ago=200, key_last_used_days_ago=5)
    iam.create_user(UserName="stranger")
    for user in (OWNER, ALICE, BOB, "stranger"):
        backdate(aws, user, 300)
    seed_assume_role_history(aws, [(OWNER, "AdminRole", 3), (OWNER, "DataEngineerRole", 20),
                                   (OWNER, "InfrastructureAdminRole", 120), (ALICE, "InfrastructureAdminRole", 5),
                                   (ALICE, "DataEngineerRole", 95)])  # fmt: skip
    aws.clear_calls()


def runbook(tmp_path, session, name: str = "review", **params):
    return open_runbook({"iam_users_file": str(EXAMPLE), **params}, tmp_path / name, session=session)


EXPECTED = [
    (ALICE, review.REMOVE, "data_engineer", "not assumed in the last 90 days"),
    (BOB, review.OFFBOARD, None, "no console sign-in and no access-key use in 90 days (last: never)"),
    (OWNER, review.REMOVE, "infrastructure_admin", "not assumed in the last 90 days"),
]


def recs(r) -> list[tuple]:
    return [(x.user, x.action, x.role_key, x.reason) for x in r.recommendations]


# ------------------------------------------------------------------------------ the one AssumeRole sweep


def test_one_sweep_gives_every_users_last_assumption_of_every_role(aws, account, session):
    use = assume_role_sweep(session, ACCOUNT_ID, 90)
    assert use.complete and use.events == 3 and use.pages == 1  # 95 and 120 days: past the 90 kept
    assert abs(use.last_assumed(OWNER, "adminrole") - ago(3).replace(tzinfo=timezone.utc)) < timedelta(minutes=1)
    assert use.last_assumed("YOUR-USERNAME", "DataEngineerRole") is not None  # IAM names are case-insensitive
    assert use.last_assumed(OWNER, "InfrastructureAdminRole") is None  # 120 days: CloudTrail no longer has it
    assert use.last_assumed(ALICE, "DataEngineerRole") is None
    assert [c.action for c in aws.calls] == ["LookupEvents"]
    lookup = aws.calls[0].params
    assert lookup["LookupAttributes"] == [{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}]


def test_a_users_own_assume_role_call_is_seen(aws, iam, account, session):
    key = iam.create_access_key(UserName=BOB)["AccessKey"]
    arn = iam.get_role(RoleName="DataEngineerRole")["Role"]["Arn"]
    aws.client("sts", credentials=key).assume_role(RoleArn=arn, RoleSessionName="bob")
    use = assume_role_sweep(session, ACCOUNT_ID)
    assert datetime.now(timezone.utc) - use.last_assumed(BOB, "DataEngineerRole") < timedelta(minutes=1)


def test_the_sweep_pages_fifty_at_a_time_no_faster_than_asked(aws, session):
    seed_assume_role_history(aws, [(f"user-{i:03d}", "DataEngineerRole", 1 + i / 10) for i in range(120)])
    use = assume_role_sweep(session, ACCOUNT_ID, 90, seconds_per_call=0.3)
    assert (use.pages, use.events, len(use.last)) == (3, 120, 120)
    starts = [c.started for c in aws.calls if c.action == "LookupEvents"]
    assert len(starts) == 3 and all(b - a >= 0.3 for a, b in zip(starts, starts[1:], strict=False))


def test_an_unreadable_history_proposes_no_removal(aws, account, session):
    seed_assume_role_history(aws, [(f"user-{i:03d}", "AdminRole", 1) for i in range(60)])
    aws.inject_fault("LookupEvents", at=2, code="AccessDeniedException", status=400, times=None)
    use = assume_role_sweep(session, ACCOUNT_ID, seconds_per_call=0)
    assert not use.complete and use.pages == 1 and "AccessDeniedException" in use.status
    users = [review.UserReview(OWNER, True, ago(300).replace(tzinfo=timezone.utc), ("admin",), ("admin",), {},
                               True, datetime.now(timezone.utc), None, True, ())]  # fmt: skip
    assert review.recommend(users, use, 90, use.until) == []  # a missing event proves nothing here
    assert review.recommend(users, RoleUse({}, use.since, use.until), 90, use.until)[0].action == review.REMOVE


def _event(**detail) -> dict:
    base = {"userIdentity": {"type": "IAMUser", "userName": "bob", "accountId": ACCOUNT_ID},
            "requestParameters": {"roleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/team/DataEngineerRole"}}  # fmt: skip
    base.update(detail)
    return {"EventTime": datetime.now(timezone.utc), "CloudTrailEvent": json.dumps(base)}


def test_only_a_successful_assumption_by_a_user_of_this_account_counts():
    assert _assumption(_event(), ACCOUNT_ID)[:2] == ("bob", "DataEngineerRole")  # a role path is not its name
    assert _assumption(_event(errorCode="AccessDenied"), ACCOUNT_ID) is None  # an attempt is not use
    session = {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/AdminRole/ops"}
    assert _assumption(_event(userIdentity=session), ACCOUNT_ID) is None  # role chaining, not a user
    other_user = {"type": "IAMUser", "userName": "bob", "accountId": "210987654321"}
    assert _assumption(_event(userIdentity=other_user), ACCOUNT_ID) is None
    other_role = {"roleArn": "arn:aws:iam::210987654321:role/DataEngineerRole"}
    assert _assumption(_event(requestParameters=other_role), ACCOUNT_ID) is None


# ------------------------------------------------------------------------------ what the review shows


def test_every_user_one_row_from_the_sweep_the_report_and_the_trail(aws, account, session, tmp_path):
    rb = runbook(tmp_path, session)
    r = review_view.Review.read(rb)
    rows = {row["user"]: row for row in r.rows()}
    assert list(rows) == [ALICE, BOB, "stranger", OWNER]  # every IAM user, spec or not
    owner = rows[OWNER]
    assert owner["granted"] == owner["can_assume"] == ["admin", "data_engineer", "infrastructure_admin"]
    assert set(owner["last_assumed"]) == {"admin", "data_engineer"}
    assert owner["console"] and owner["last_sign_in"] == f"{ago(2):%Y-%m-%d}" and owner["password_age_days"] == 200
    assert owner["access_keys"] == [{"key": 1, "status": "active", "age_days": 100, "last_used": f"{ago(1):%Y-%m-%d}"}]
    assert rows["stranger"] == {**rows["stranger"], "in_spec": False, "granted": [], "can_assume": [], "mfa": False}
    frame = r.table(rb)
    assert tuple(frame.columns) == records.ACCESS_REVIEW_TABLE.columns
    assert frame.set_index("user").loc[OWNER, "access_keys"].startswith("1: active, 100 d old, used ")
    counted = Counter(c.action for c in aws.calls)
    assert counted["LookupEvents"] == 1 and counted["GetAccountAuthorizationDetails"] == 1
    assert aws.mutating_calls() == []


def test_the_heatmap_colours_days_since_last_use(account, session, tmp_path):
    r = review_view.Review.read(runbook(tmp_path, session))
    days = review_view.heatmap_frame(r)
    assert days.loc[OWNER].tolist() == [3, 20, -1]  # -1: access, but no AssumeRole in the period
    assert days.loc["stranger"].isna().all()
    html = review_view.heatmap(r).to_html()
    assert "#c62828" in html and "#2e7d32" in html and "none" in html


def test_unused_grants_are_proposed_for_removal_and_idle_users_for_offboarding(account, session, tmp_path):
    r = review_view.Review.read(runbook(tmp_path, session))
    assert recs(r) == EXPECTED
    # a user made within the period is left alone, however idle
    r.users[1] = review.UserReview(**{**r.users[1].__dict__, "created": ago(10).replace(tzinfo=timezone.utc)})
    assert [x.user for x in review.recommend(r.users, r.use, 90, r.now)] == [ALICE, OWNER]


def test_the_proposed_spec_validates_and_round_trips_through_tfvars(account, session, tmp_path):
    rb = runbook(tmp_path, session)
    r = review_view.Review.read(rb)
    diff = r.propose(rb)
    proposed = load_spec(iam_users_file=str(rb.run_dir / records.PROPOSED_YAML.name))
    assert proposed.to_mapping() == {
        OWNER: {"description": "Account owner - full access", "roles": ["admin", "data_engineer"]},
        ALICE: {"description": "Alice - Platform Engineer", "roles": ["infrastructure_admin"]},
    }
    tfvars = (rb.run_dir / records.PROPOSED_TFVARS.name).read_text(encoding="utf-8")
    assert load_tfvars(tfvars) == proposed.to_mapping()
    assert "# proposed: offboard bob@example.com: no console sign-in and no access-key use in 90 days" in tfvars
    assert "# proposed: remove data_engineer: not assumed in the last 90 days" in tfvars
    assert (rb.run_dir / records.PROPOSED_DIFF.name).read_text(encoding="utf-8") == diff
    assert "-  bob@example.com:" in diff and "+    roles: [infrastructure_admin]" in diff


def test_use_older_than_cloudtrail_keeps_comes_from_the_earlier_review(account, session, tmp_path):
    earlier = runbook(tmp_path, session, "earlier")
    first = review_view.Review.read(earlier)
    first.sign(earlier, {}, None)
    record = records.read(earlier.run_dir, records.ACCESS_REVIEW)
    rows = [{**row, "last_assumed": {**row["last_assumed"], "infrastructure_admin": f"{ago(100):%Y-%m-%d}"}}
            if row["user"] == OWNER else row for row in record.users]  # fmt: skip
    records.write(earlier.run_dir, records.ACCESS_REVIEW, review.AccessReview(**{**record.__dict__, "users": rows}))
    later = review_view.Review.read(runbook(tmp_path, session, "later", review_days=120))
    assert (OWNER, "infrastructure_admin") not in [(x.user, x.role_key) for x in later.recommendations]
    assert (ALICE, review.REMOVE, "data_engineer", "not assumed in the last 90 days (all CloudTrail keeps)") in recs(
        later
    )


# ------------------------------------------------------------------------------ decisions and sign-off


def test_decisions_take_every_documented_form(account, session, tmp_path):
    spec = load_spec(iam_users_file=EXAMPLE)
    decided = review.parse_decisions({
        OWNER: "keep", "Bob@Example.com": {"decision": "offboard", "note": "left in October"},
        ALICE: "remove role DataEngineerRole",
    }, spec)  # fmt: skip
    assert decided == {
        OWNER: review.Decision(OWNER, review.KEEP),
        BOB: review.Decision(BOB, review.OFFBOARD, (), "left in October"),
        ALICE: review.Decision(ALICE, review.REMOVE, ("data_engineer",)),
    }
    alice = {"description": "Alice - Platform Engineer", "roles": ["infrastructure_admin"]}
    assert review.reviewed_users(spec, decided) == {OWNER: spec.to_mapping()[OWNER], ALICE: alice}


def test_a_bad_decisions_file_lists_every_problem_at_once(tmp_path):
    spec = load_spec(iam_users_file=EXAMPLE)
    bad = {
        "carol": "keep",
        OWNER: "promote",
        ALICE: "remove admin, data_enginer",
        BOB: {"decision": "keep data_engineer", "note": 7, "why": "x"},
        "BOB@example.com": "keep",
        "alice@EXAMPLE.com": "remove",
    }
    with pytest.raises(SpecError) as caught:
        review.parse_decisions(bad, spec, "d.yaml")
    assert caught.value.problems == [
        "d.yaml: carol: not in the spec; only spec users are decided here (others: 05_offboard_user)",
        "d.yaml: your-username: 'promote' is not a decision; write keep, offboard or remove <role key>",
        "d.yaml: alice@example.com: the spec does not grant admin to alice@example.com; granted: data_engineer, "
        "infrastructure_admin",
        "d.yaml: alice@example.com: unknown role 'data_enginer'; valid roles: admin, data_engineer, "
        "infrastructure_admin",
        "d.yaml: bob@example.com: unknown field 'why'; allowed: decision, note",
        "d.yaml: bob@example.com: note must be text, got int",
        "d.yaml: bob@example.com: 'keep data_engineer': keep takes no role",
        "d.yaml: BOB@example.com: decided twice (IAM user names are case-insensitive)",
        "d.yaml: alice@EXAMPLE.com: decided twice (IAM user names are case-insensitive)",
    ]
    with pytest.raises(SpecError, match="'remove': name the role"):
        review.parse_decisions({ALICE: "remove"}, spec)


def test_a_decisions_file_needs_a_reviewer_and_is_checked_before_any_read(aws, account, session, tmp_path):
    path = tmp_path / "decisions.yaml"
    path.write_text("carol: keep\n", encoding="utf-8")
    rb = runbook(tmp_path, session, review_decisions_file=str(path))
    aws.clear_calls()
    with pytest.raises(SpecError) as caught:
        review_view.decisions(rb)
    assert caught.value.problems[1] == "reviewer: required with review_decisions_file: who signs these decisions"
    assert "carol: not in the spec" in caught.value.problems[0]
    assert aws.calls == []


def test_a_signed_review_needs_every_recommendation_decided_or_writes_nothing(account, session, tmp_path):
    rb = runbook(tmp_path, session)
    r = review_view.Review.read(rb)
    with pytest.raises(SpecError) as caught:
        r.sign(rb, {OWNER: review.Decision(OWNER, review.KEEP)}, "Dana Reviewer")
    assert [p.split(": ")[2] for p in caught.value.problems] == [ALICE, BOB]
    assert caught.value.problems[1].endswith(f"add `{BOB}: keep` or `{BOB}: offboard`")
    assert not (rb.run_dir / records.ACCESS_REVIEW.name).exists()
    assert not (rb.run_dir / records.REVIEWED_YAML.name).exists()


def test_sign_off_records_the_reviewer_the_decisions_and_the_reviewed_spec(account, session, tmp_path):
    rb = runbook(tmp_path, session)
    r = review_view.Review.read(rb)
    decided = {OWNER: review.Decision(OWNER, review.KEEP, note="on call"),
               ALICE: review.Decision(ALICE, review.REMOVE, ("data_engineer",)),
               BOB: review.Decision(BOB, review.OFFBOARD)}  # fmt: skip
    signed = r.sign(rb, decided, "  Dana Reviewer ")
    assert signed.signed and signed.reviewer == "Dana Reviewer"
    assert records.read(rb.run_dir, records.ACCESS_REVIEW) == signed
    assert [(o["user"], o["decided"], o["note"]) for o in signed.outcomes] == [
        (ALICE, "remove", ""), (BOB, "remove", ""), (OWNER, "keep", "on call")
    ]  # fmt: skip
    text = (rb.run_dir / records.REVIEWED_YAML.name).read_text(encoding="utf-8")
    assert text.startswith("# Reviewed by Dana Reviewer on ") and "  # keep: on call\n" in text
    assert signed.reviewed_spec_sha256 == review.sha256(text)
    assert load_spec(iam_users_file=str(rb.run_dir / records.REVIEWED_YAML.name)).to_mapping() == {
        OWNER: load_spec(iam_users_file=EXAMPLE).to_mapping()[OWNER],
        ALICE: {"description": "Alice - Platform Engineer", "roles": ["infrastructure_admin"]},
    }
    unsigned = r.sign(runbook(tmp_path, session, "unsigned"), {}, None)
    assert not unsigned.signed and unsigned.reviewer is None and unsigned.decisions == []


# ------------------------------------------------------------------------------ the live sign-off, without a browser


def test_the_review_draft_edits_a_spec_draft_and_saves_as_a_headless_run_would(account, session, tmp_path):
    rb = runbook(tmp_path, session)
    r = review_view.Review.read(rb)
    model = review_view.ReviewDraft(r, {OWNER: review.Decision(OWNER, review.KEEP)})
    assert model.choices == [None, None, review.KEEP]  # alice, bob, owner: the file's decision comes first
    assert model.draft.plan.is_empty  # undecided counts as keep: the chain would change nothing yet
    model.choose(0, review.REMOVE)
    model.choose(1, review.REMOVE)
    assert model.draft.users == review.reviewed_users(r.spec, model.decisions())
    kinds = sorted((c.kind, c.address) for c in model.draft.plan.changes)
    assert kinds == [("delete_user", f'aws_iam_user.users["{BOB}"]'),
                     ("detach", f'aws_iam_user_policy_attachment.user_roles["{ALICE}/data_engineer"]'),
                     ("tag_user", f'aws_iam_user.users["{ALICE}"]')]  # fmt: skip
    assert model.save(rb) is None and model.message.startswith("Not saved:\n- reviewer: type who reviewed")
    model.reviewer = "Dana Reviewer"
    model.choose(1, review.KEEP)  # the reviewer keeps bob after all: he is back in the draft
    assert BOB in model.draft.users and {c.kind for c in model.draft.plan.changes} == {"detach", "tag_user"}
    signed = model.save(rb)
    assert signed.signed and "reviewed_iam_users.yaml written" in model.message
    headless = review_view.Review.read(runbook(tmp_path, session, "headless"))
    again = headless.sign(runbook(tmp_path, session, "headless"), model.decisions(), "Dana Reviewer")
    assert (again.decisions, again.outcomes) == (signed.decisions, signed.outcomes)


def test_the_review_widget_is_a_thin_view_over_the_model(account, session, tmp_path):
    rb = runbook(tmp_path, session)
    view = ReviewWidget(review_view.ReviewDraft(review_view.Review.read(rb), {}, "Dana"), rb)
    assert len(view.toggles) == 3
    for toggle in view.toggles:
        toggle.value = review.REMOVE
    assert view.model.choices == [review.REMOVE] * 3
    assert "delete_user" in view.preview.value or "aws_iam_user.users" in view.preview.value
    view.save_button.click()
    assert "Signed by Dana" in view.message.value
    assert records.read(rb.run_dir, records.ACCESS_REVIEW).signed


def test_a_live_session_records_the_review_unsigned_and_waits_for_save(account, session, tmp_path):
    rb = runbook(tmp_path, session, reviewer="Dana")
    rb.headless, rb.frontend = False, Widgets()  # as in Jupyter: the widget, not the parameters, signs
    r = review_view.Review.read(rb)
    assert review_view.sign_off(rb, r, {}) is None
    assert isinstance(rb.pending, ReviewWidget) and rb.pending.reviewer.value == "Dana"
    assert not records.read(rb.run_dir, records.ACCESS_REVIEW).signed
    assert not (rb.run_dir / records.REVIEWED_YAML.name).exists()


# ------------------------------------------------------------------------------ as a scheduled job runs it


def _decisions(tmp_path) -> Path:
    path = tmp_path / "decisions.yaml"
    path.write_text(yaml.safe_dump({OWNER: {"decision": "keep", "note": "account owner"},
                                    ALICE: "remove data_engineer", BOB: "offboard"}), encoding="utf-8")  # fmt: skip
    return path


@pytest.mark.e2e
def test_review_signed_then_applied_by_the_chain_then_shown_done(aws, iam, account, tmp_path):
    out = tmp_path / "runs"
    decisions = str(_decisions(tmp_path))
    params = {"iam_users_file": str(EXAMPLE), "reviewer": "Dana Reviewer", "review_decisions_file": decisions}
    signed = runner.run(["06_access_review"], params, out=out)
    assert signed.exit_code == 0, signed.failure
    assert aws.mutating_calls() == []  # the review changes nothing
    assert (signed.record["kind"], signed.record["reviewer"]) == ("access_review", "Dana Reviewer")
    files = [p.relative_to(signed.run_dir).as_posix() for p in signed.run_dir.rglob("*") if p.is_file()]
    assert [f for f in files if records.declared(f) is None] == []
    assert {records.REVIEWED_YAML.name, records.PROPOSED_TFVARS.name, records.ACCESS_REVIEW_TABLE.name} <= set(files)
    listed = {row["run"]: row for row in audit.listing(out)}[signed.run_dir.name]
    assert (listed["kind"], listed["reviewer"]) == ("access_review", "Dana Reviewer")

    reviewed = signed.run_dir / records.REVIEWED_YAML.name
    applied = runner.run(params={"iam_users_file": str(reviewed), "apply": True}, out=out)
    assert applied.exit_code == 0, applied.failure
    assert BOB not in aws.iam_backend().users
    assert applied.record["kind"] == "run" and records.read(applied.run_dir, records.RUN_MANIFEST).mode == "apply"

    aws.clear_calls()
    follow = runner.run(["06_access_review"], {"iam_users_file": str(reviewed)}, out=out)
    assert follow.exit_code == 0, follow.failure
    assert aws.mutating_calls() == []
    rows = records.read(follow.run_dir, records.ACCESS_REVIEW).follow_up
    day = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    assert [(r["user"], r["role_key"], r["status"], r["reviewed_in"]) for r in rows] == [
        (ALICE, "data_engineer", f"removed {day} in run {applied.run_dir.name}", signed.run_dir.name),
        (BOB, None, f"offboarded {day} in run {applied.run_dir.name}", signed.run_dir.name),
    ]
    html = (follow.run_dir / "06_access_review.html").read_text(encoding="utf-8")
    assert f"removed {day} in run {applied.run_dir.name}" in html


def test_an_undone_removal_shows_as_not_done(aws, account, session, tmp_path):
    out = tmp_path / "runs"
    first = runbook(out.parent, session, "runs/1-review")
    r = review_view.Review.read(first)
    r.sign(first, {OWNER: review.Decision(OWNER, review.KEEP), BOB: review.Decision(BOB, review.OFFBOARD),
                   ALICE: review.Decision(ALICE, review.REMOVE, ("data_engineer",))}, "Dana")  # fmt: skip
    later = review_view.Review.read(runbook(out.parent, session, "runs/2-review"))
    assert [row["status"] for row in later.follow_up] == ["not done: can still assume data_engineer",
                                                         "not done: the user still exists"]  # fmt: skip


@pytest.mark.e2e
def test_invalid_decisions_refuse_the_run_before_anything_is_read(aws, account, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("carol: keep\nalice@example.com: remove admin\n", encoding="utf-8")
    out = tmp_path / "runs"
    code = cli.main(["run", "06_access_review", "-f", str(EXAMPLE), "-p", "review_decisions_file", str(bad),
                     "-p", "reviewer", "Dana", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "carol: not in the spec" in err and "the spec does not grant admin to alice@example.com" in err
    assert {c.action for c in aws.calls} == {"GetCallerIdentity"}  # refused before the sweep
    (run_dir,) = out.iterdir()
    assert not any(run_dir.glob("access_review*")) and not any(run_dir.glob("proposed_*"))


def _bench():
    path = ROOT / "bench" / "review_bench.py"
    spec = importlib.util.spec_from_file_location("iamrunbook_review_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_reviews_read_calls_do_not_grow_with_the_users(tmp_path):
    bench = _bench()
    small, large = (bench.measure(users, 120, tmp_path) for users in (10, 80))
    assert small["exit_code"] == large["exit_code"] == 0
    assert bench.same_calls([small, large]), (small["calls"], large["calls"])
    assert large["calls"]["cloudtrail:LookupEvents"] >= 2 and large["mutating"] == 0  # paged, and read-only
    assert large["total"] < 80  # fewer calls than users: nothing is asked per user
    from iamrunbook.aws.cis_reads import READ_ACTIONS as CIS_ACCOUNT_READS

    assert {a: large["calls"][a] for a in CIS_ACCOUNT_READS} == dict.fromkeys(CIS_ACCOUNT_READS, 1)  # once an account


def test_the_demo_account_has_a_history_to_review(tmp_path, monkeypatch):
    from iamrunbook.sandbox import EmbeddedAws, seed
    from iamrunbook.sandbox.demo import pointed_at

    with EmbeddedAws(load_aws_managed_policies=False) as aws, pointed_at(aws):
        seed.seed_demo_account(aws.client("iam", internal=True), history=aws)
        rb = open_runbook({"iam_users_file": str(EXAMPLE)}, tmp_path / "demo")
        r = review_view.Review.read(rb)
    assert [(x.user, x.label) for x in r.recommendations] == [(ALICE, "remove data_engineer"),
                                                             (OWNER, "remove infrastructure_admin")]  # fmt: skip
    owner = next(u for u in r.rows() if u["user"] == OWNER)
    assert owner["access_keys"][0]["age_days"] == 100
