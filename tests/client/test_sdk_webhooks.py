"""The SDK's webhook verifier against the server's signer: two implementations of one scheme.

Signed with shared/domain/webhooks.py `signature_headers` (what the deliverer sends),
verified with coditect_license `verify_webhook` (what a receiver runs). No server needed.
"""

from __future__ import annotations

import json
import time

import pytest

from coditect_license import LicenseError, WebhookInvalid, verify_webhook
from shared.domain.events import AuditEvent
from shared.domain.notifications import message
from shared.domain.webhooks import new_webhook_secret, signature_headers, signing_secrets

NOW = 1_767_225_600
OLD, NEW = new_webhook_secret(), new_webhook_secret()
EVENT = message(AuditEvent("ev_42", "t1", "lic_1", "license.update", "admin@example.com", NOW * 1000,
                           details={"changes": {"suspended": {"before": False, "after": True}}}),
                "license.suspended")
BODY = json.dumps(EVENT, separators=(",", ":")).encode()


def _signed(secrets, body=BODY, now=NOW):
    return signature_headers(body, EVENT["id"], EVENT["type"], secrets, now)


def _reason(body, headers, secrets, **kwargs) -> str:
    with pytest.raises(WebhookInvalid) as caught:
        verify_webhook(body, headers, secrets, now=NOW, **kwargs)
    assert isinstance(caught.value, LicenseError) and caught.value.code == "WEBHOOK_INVALID"
    return caught.value.reason


def test_a_delivery_the_server_signed_verifies_and_returns_its_body():
    assert verify_webhook(BODY, _signed([NEW]), NEW, now=NOW) == EVENT
    assert EVENT["id"] == "ev_42" and EVENT["type"] == "license.suspended"


def test_rotation_receiver_still_on_the_old_secret():
    headers = _signed(signing_secrets(NEW, OLD, NOW + 3600, NOW))
    assert verify_webhook(BODY, headers, OLD, now=NOW) == EVENT


def test_rotation_receiver_already_on_the_new_secret():
    headers = _signed(signing_secrets(NEW, OLD, NOW + 3600, NOW))
    assert verify_webhook(BODY, headers, [NEW], now=NOW) == EVENT


def test_rotation_receiver_holding_both_verifies_before_during_and_after_the_overlap():
    for secrets in ([OLD], [NEW, OLD], [NEW]):
        assert verify_webhook(BODY, _signed(secrets), [NEW, OLD], now=NOW) == EVENT


def test_after_the_overlap_the_old_secret_no_longer_verifies():
    headers = _signed(signing_secrets(NEW, OLD, NOW, NOW))
    assert _reason(BODY, headers, OLD) == "no_matching_signature"


def test_a_tampered_body_fails():
    tampered = BODY.replace(b'"after":true', b'"after":false')
    assert tampered != BODY
    assert _reason(tampered, _signed([NEW]), NEW) == "no_matching_signature"


def test_a_tampered_timestamp_fails():
    headers = _signed([NEW])
    headers["Coditect-Webhook-Timestamp"] = str(NOW - 1)
    assert _reason(BODY, headers, NEW) == "no_matching_signature"


def test_a_wrong_secret_fails():
    assert _reason(BODY, _signed([NEW]), new_webhook_secret()) == "no_matching_signature"


def test_a_stale_or_future_delivery_fails():
    assert _reason(BODY, _signed([NEW], now=NOW - 301), NEW) == "timestamp_out_of_tolerance"
    assert _reason(BODY, _signed([NEW], now=NOW + 301), NEW) == "timestamp_out_of_tolerance"
    assert verify_webhook(BODY, _signed([NEW], now=NOW - 300), NEW, now=NOW) == EVENT
    assert verify_webhook(BODY, _signed([NEW], now=NOW - 3600), NEW, now=NOW, tolerance_s=3600) == EVENT


def test_the_clock_is_the_default_now():
    assert verify_webhook(BODY, _signed([NEW], now=int(time.time())), NEW) == EVENT
    with pytest.raises(WebhookInvalid):
        verify_webhook(BODY, _signed([NEW]), NEW)  # NOW is long past


def test_header_names_in_any_case():
    lower = {name.lower(): value for name, value in _signed([NEW]).items()}
    assert verify_webhook(BODY, lower, NEW, now=NOW) == EVENT
    wsgi_style = {name.upper(): value for name, value in _signed([NEW]).items()}
    assert verify_webhook(BODY, wsgi_style, NEW, now=NOW) == EVENT


@pytest.mark.parametrize("name, value, reason", [
    ("Coditect-Webhook-Timestamp", None, "missing_header"),
    ("Coditect-Webhook-Signature", None, "missing_header"),
    ("Coditect-Webhook-Timestamp", "yesterday", "malformed_header"),
    ("Coditect-Webhook-Signature", "sha256=abc", "malformed_header"),
    ("Coditect-Webhook-Signature", "v1=not-hex", "malformed_header"),
    ("Coditect-Webhook-Id", "ev_other", "header_mismatch"),
    ("Coditect-Webhook-Type", "license.resumed", "header_mismatch"),
])
def test_malformed_headers_fail_naming_why(name, value, reason):
    headers = _signed([NEW])
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    assert _reason(BODY, headers, NEW) == reason


def test_id_and_type_headers_are_optional():
    headers = {k: v for k, v in _signed([NEW]).items() if k.endswith(("Timestamp", "Signature"))}
    assert verify_webhook(BODY, headers, NEW, now=NOW) == EVENT


def test_a_signed_body_that_is_not_a_json_object_is_refused():
    assert _reason(b"[1, 2]", _signed([NEW], body=b"[1, 2]"), NEW) == "malformed_body"
    assert _reason(b"\xff", _signed([NEW], body=b"\xff"), NEW) == "malformed_body"


def test_the_receivers_own_mistakes_are_not_webhook_invalid():
    with pytest.raises(TypeError):
        verify_webhook(BODY.decode(), _signed([NEW]), NEW, now=NOW)
    for secrets in ("", [], [""]):
        with pytest.raises(ValueError):
            verify_webhook(BODY, _signed([NEW]), secrets, now=NOW)
    assert verify_webhook(bytearray(BODY), _signed([NEW]), (NEW,), now=NOW) == EVENT
