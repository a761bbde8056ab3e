"""The redaction pass: secrets that slip into target output never reach a bundle; ordinary config stays readable."""
from __future__ import annotations

import pytest

from collectors.redact import redact


@pytest.mark.parametrize("text,secret", [
    ("root:$6$saltsalt$0123456789abcdefghijABCDEFGHIJ:19700:0:99999:7:::", "0123456789abcdefghij"),
    ("u:$y$j9T$abcdefghijklmnop$QRSTUVWXYZ0123456789abcdefghijk:1::", "QRSTUVWXYZ0123456789"),
    ("export API_TOKEN=ghp_abcdefSECRET123", "ghp_abcdefSECRET123"),
    ("DB_PASSWORD: 'hunter2!'", "hunter2"),
    ("client_secret = s3cr3tValue", "s3cr3tValue"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAA"),
])
def test_secrets_are_removed(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "<redacted>" in out


@pytest.mark.parametrize("text", [
    "PasswordAuthentication no",
    "passwordauthentication yes",
    "password    requisite     pam_pwquality.so retry=3 minlen=12",
    "PASS_MAX_DAYS\t90",
    "ENCRYPT_METHOD SHA512",
    "rocommunity public default",
    "TMOUT=600; readonly TMOUT; export TMOUT",
])
def test_ordinary_configuration_is_kept(text: str) -> None:
    assert redact(text) == text
