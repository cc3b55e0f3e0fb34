"""Account-level state moto lacks or answers unlike AWS: the root user, server certificates, Access Analyzer.

- moto's root user never has keys, MFA or use, and cannot be given them through any API. `set_root`
  (tests, the demo) stamps them on moto's backend; the credential report's `<root_account>` row and
  GetAccountSummary (AccountMFAEnabled, AccountAccessKeysPresent) then say so, and a virtual root MFA
  device is listed by ListVirtualMFADevices as AWS lists it (`…:mfa/root-account-mfa-device`).
- moto's ListServerCertificates dates every certificate 2010-2012; AWS reports the certificate's own
  expiry (its notAfter). Answered here from the uploaded body.
- moto has no IAM Access Analyzer: ListAnalyzers is answered from the analyzers `add_analyzer` made
  (one list per account; the region is not kept apart).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape

from cryptography import x509

from iamrunbook.sandbox.credentials import ROOT_STATE, iso
from iamrunbook.sandbox.wire import Request, Response, json_response, query_response

ANALYZERS = "sandbox_analyzers"
ANSWERS = {("iam", "ListServerCertificates"), ("access-analyzer", "ListAnalyzers")}


def set_root(backend: Any, *, mfa: str | None = None, access_key: bool = False,
             password_last_used: datetime | None = None, key_last_used: datetime | None = None) -> None:  # fmt: skip
    """The root user's MFA (None, "virtual" or "hardware"), an active access key, and its last use."""
    columns: dict[str, str] = {"mfa_active": "true" if mfa else "false"}
    if password_last_used is not None:
        columns["password_last_used"] = iso(password_last_used)
    if access_key:
        columns.update(access_key_1_active="true", access_key_1_last_rotated=iso(datetime.now(timezone.utc)),
                       access_key_1_last_used_date=iso(key_last_used) if key_last_used else "N/A")  # fmt: skip
    setattr(backend, ROOT_STATE, columns)
    backend.account_summary._account_mfa_enabled = 1 if mfa else 0
    backend.account_summary._account_access_keys_present = 1 if access_key else 0
    devices = backend.virtual_mfa_devices
    device = next((d for d in devices.values() if d.serial_number.endswith("root-account-mfa-device")), None)
    if mfa == "virtual" and device is None:
        device = backend.create_virtual_mfa_device("root-account-mfa-device", "/")
        device.enable_date = datetime.now(timezone.utc).replace(tzinfo=None)
    elif mfa != "virtual" and device is not None:
        del backend.virtual_mfa_devices[device.serial_number]


def add_analyzer(backend: Any, name: str, status: str = "ACTIVE") -> None:
    analyzers = getattr(backend, ANALYZERS, [])
    arn = f"arn:aws:access-analyzer:us-east-1:{backend.account_id}:analyzer/{name}"
    analyzers.append({"arn": arn, "name": name, "type": "ACCOUNT", "status": status,
                      "createdAt": datetime.now(timezone.utc).isoformat()})  # fmt: skip
    setattr(backend, ANALYZERS, analyzers)


def _certificate_xml(cert: Any) -> str:
    expires = x509.load_pem_x509_certificate(cert.cert_body.encode()).not_valid_after_utc
    uploaded = getattr(cert, "sandbox_uploaded", None) or datetime.now(timezone.utc)
    return (
        f"<member><ServerCertificateName>{escape(cert.cert_name)}</ServerCertificateName><Path>{escape(cert.path)}"
        f"</Path><Arn>{escape(cert.arn)}</Arn><ServerCertificateId>ASCA{hashlib.sha1(cert.arn.encode()).hexdigest()[:16].upper()}"
        f"</ServerCertificateId><UploadDate>{iso(uploaded)}</UploadDate><Expiration>{iso(expires)}</Expiration>"
        "</member>"
    )


def answer(request: Request, backend: Any) -> Response:
    """ListServerCertificates dated by each certificate, or ListAnalyzers from `add_analyzer`."""
    if request.service == "access-analyzer":
        return json_response({"analyzers": list(getattr(backend, ANALYZERS, []))})
    members = "".join(_certificate_xml(c) for c in backend.list_server_certificates())
    return query_response(request, f"<ServerCertificateMetadataList>{members}</ServerCertificateMetadataList>"
                                   "<IsTruncated>false</IsTruncated>")  # fmt: skip
