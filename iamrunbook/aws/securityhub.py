"""Security Hub: the CIS findings checked against botocore's own model, and imported in batches of 100.

A malformed finding is found here, by the same model the API enforces, before any call; the import sends
BatchImportFindings at most 100 findings at a time (the API's limit) and returns what Security Hub
refused. Only `security_hub_import: true` calls it, and only then does the runner's policy need the action.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator

from iamrunbook.aws import clients as aws
from iamrunbook.base.errors import RunbookError

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()
#: what `security_hub_import: true` adds to the runner's policy (cli/permissions.py)
IMPORT_ACTIONS = ("securityhub:BatchImportFindings",)
BATCH = 100


def _input_shape():
    import botocore.session

    return botocore.session.get_session().get_service_model("securityhub").operation_model(
        "BatchImportFindings").input_shape  # fmt: skip


def problems(findings: list[dict]) -> list[str]:
    """Every way a finding breaks Security Hub's model (types, required members, lengths), one line each."""
    shape = _input_shape()
    found = []
    for n, finding in enumerate(findings):
        report = ParamValidator().validate({"Findings": [finding]}, shape)
        if report.has_errors():
            found.append(f"finding {n} ({finding.get('Id', 'no Id')}): {report.generate_report()}")
    return found


def import_findings(session, findings: list[dict]) -> dict:
    """BatchImportFindings in batches of 100: {"imported": n, "failed": [...]}. Refuses malformed findings
    (every problem listed) before the first call."""
    bad = problems(findings)
    if bad:
        raise RunbookError("not imported, nothing sent:\n" + "\n".join(bad))
    client = aws.client(session, "securityhub")
    imported, failed = 0, []
    for start in range(0, len(findings), BATCH):
        try:
            answer = client.batch_import_findings(Findings=findings[start : start + BATCH])
        except ParamValidationError as exc:  # the model check above makes this a bug, not a user's mistake
            raise RunbookError(f"Security Hub refused the batch: {exc}") from exc
        except ClientError as exc:
            raise RunbookError(f"Security Hub refused the import after {imported} finding(s): {aws.error_code(exc)}: "
                               f"{exc.response.get('Error', {}).get('Message', '')} (is Security Hub enabled in "
                               f"{session.region_name}, and may this identity call BatchImportFindings?)") from exc
        imported += answer.get("SuccessCount", 0)
        failed += answer.get("FailedFindings", [])
    return {"imported": imported, "failed": failed}
