"""Webhook endpoints through the admin function: made with a secret shown once (kept in the
Secret Manager stand-in, read back with the real client), listed, changed, rotated with an
overlap, deleted; URLs checked; tenants kept apart."""

from __future__ import annotations

import pytest
from google.cloud import secretmanager

from shared.domain.notifications import NOTIFICATION_TYPES
from shared.google_secrets import SecretReader, secret_manager_client
from shared.licensing.admin_requests import _EVENT_TYPE_COUNT, _EVENT_TYPES

URL = "https://hooks.example.com/coditect"


def _secret_of(rt, version: str) -> str:
    return SecretReader(secret_manager_client(rt.settings.secret_manager_endpoint)).text(version)


def test_the_request_knows_every_notification_type():
    assert tuple(_EVENT_TYPES.__args__) == NOTIFICATION_TYPES and _EVENT_TYPE_COUNT == len(NOTIFICATION_TYPES)


def test_an_endpoint_is_made_with_its_secret_shown_once_and_kept_in_secret_manager(admin_api, tenants, rt):
    mine, _ = tenants
    status, made = admin_api("POST", "webhooks", {"url": URL, "events": ["license.expiring", "license.expired"],
                                                  "description": "ops pager"}, tenant=mine)
    assert status == 201, made
    secret, webhook = made["secret"], made["webhook"]
    assert secret.startswith("whsec_") and webhook["id"].startswith("wh_") and webhook["tenant"] == mine
    assert (webhook["url"], webhook["events"], webhook["enabled"]) == (URL, ["license.expiring", "license.expired"],
                                                                       True)
    stored = rt.store.get_webhook(webhook["id"])
    assert [_secret_of(rt, v.name) for v in stored.secret_versions] == [secret]
    assert secret not in str(rt.firestore_client.collection("webhooks").document(webhook["id"]).get().to_dict())
    status, again = admin_api("GET", f"webhooks/{webhook['id']}", tenant=mine)
    assert status == 200 and "secret" not in again and again["webhook"] == webhook
    listed = admin_api("GET", "webhooks", tenant=mine)[1]["webhooks"]
    assert [w["id"] for w in listed] == [webhook["id"]]
    events = [e for e in rt.store.list_events(tenant_id=mine, license_id=None) if e.type == "webhook.create"]
    assert events and events[0].details["webhook"] == webhook["id"] and secret not in str(events[0].details)


def test_rotation_keeps_the_old_secret_signing_for_the_overlap_then_delete_removes_both(admin_api, tenants, rt):
    mine, _ = tenants
    made = admin_api("POST", "webhooks", {"url": URL}, tenant=mine)[1]
    webhook_id, first = made["webhook"]["id"], made["secret"]
    status, rotated = admin_api("POST", f"webhooks/{webhook_id}/rotate", {"overlap_s": 3600}, tenant=mine)
    assert status == 200 and rotated["secret"] != first and rotated["webhook"]["previous_secret_signs_until"]
    endpoint = rt.store.get_webhook(webhook_id)
    signing = endpoint.signing_versions(rt.clock.now_ms())
    assert [_secret_of(rt, v.name) for v in signing] == [rotated["secret"], first]
    assert endpoint.signing_versions(rt.clock.now_ms() + 3_601_000) == signing[:1]
    at_once = admin_api("POST", f"webhooks/{webhook_id}/rotate", {"overlap_s": 0}, tenant=mine)[1]
    assert rt.store.get_webhook(webhook_id).signing_versions(rt.clock.now_ms())[0].name != signing[0].name
    assert at_once["webhook"]["previous_secret_signs_until"] is None
    assert admin_api("DELETE", f"webhooks/{webhook_id}", tenant=mine) == (200, {"status": "deleted", "id": webhook_id})
    assert admin_api("GET", f"webhooks/{webhook_id}", tenant=mine)[0] == 404
    client = secret_manager_client(rt.settings.secret_manager_endpoint)
    with pytest.raises(Exception, match="not found"):
        client.get_secret(request=secretmanager.GetSecretRequest(name=signing[0].name.split("/versions/")[0]))


@pytest.mark.parametrize("url, says", [
    ("http://hooks.example.com/x", "https"),
    ("https://user:pass@hooks.example.com/x", "user"),
    ("https://hooks.example.com/x#frag", "fragment"),
    ("https://metadata.google.internal/computeMetadata", "metadata"),
    ("ftp://hooks.example.com/x", "https"),
])
def test_a_url_that_could_not_be_delivered_to_safely_is_400(world, url, says):
    world.reconfigure(webhook_allow_private=False)  # as deployed (the local stack allows loopback receivers)
    answer = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": url})
    body = answer.get_json()
    assert answer.status_code == 400 and body["error"]["field"] == "url", body
    assert says in body["error"]["message"].lower(), body


def test_nobody_reads_or_changes_another_tenants_endpoints(admin_api, tenants):
    mine, theirs = tenants
    webhook_id = admin_api("POST", "webhooks", {"url": URL}, tenant=mine)[1]["webhook"]["id"]
    routes = (("GET", f"webhooks/{webhook_id}", None), ("PATCH", f"webhooks/{webhook_id}", {"enabled": False}),
              ("POST", f"webhooks/{webhook_id}/rotate", {}), ("DELETE", f"webhooks/{webhook_id}", None))
    for method, path, body in routes:
        other = admin_api(method, path, body, tenant=theirs)
        missing = admin_api(method, path.replace(webhook_id, "wh_" + "0" * 20), body, tenant=theirs)
        assert other[0] == missing[0] == 404, (method, path)
        assert admin_api(method, path, body, role="", tenant=mine)[0] == 403
    assert admin_api("GET", "webhooks", tenant=theirs)[1]["webhooks"] == []
    assert admin_api("GET", "webhooks", tenant=theirs, query={"tenant": mine})[1]["webhooks"] == []
    assert admin_api("POST", "webhooks", {"url": URL, "tenant": mine}, tenant=theirs)[0] == 404
    assert admin_api("GET", "webhooks", role="owner", uid="root", query={"tenant": mine})[1]["webhooks"][0]["id"] \
        == webhook_id
    assert admin_api("POST", "webhooks", {"url": URL}, role="owner", uid="root")[0] == 400  # the owner names one


def test_changes_are_kept_and_audited(admin_api, tenants, rt):
    mine, _ = tenants
    webhook_id = admin_api("POST", "webhooks", {"url": URL}, tenant=mine)[1]["webhook"]["id"]
    status, changed = admin_api("PATCH", f"webhooks/{webhook_id}", {"enabled": False, "events": ["seats.exhausted"],
                                                                    "url": URL + "/v2"}, tenant=mine)
    assert status == 200 and changed["webhook"]["enabled"] is False
    assert changed["webhook"]["events"] == ["seats.exhausted"] and changed["webhook"]["url"] == URL + "/v2"
    assert admin_api("PATCH", f"webhooks/{webhook_id}", {"events": ["nope"]}, tenant=mine)[0] == 400
    assert admin_api("PATCH", f"webhooks/{webhook_id}", {"url": "https://u:p@x.example.com"}, tenant=mine)[0] == 400
    [update] = [e for e in rt.store.list_events(tenant_id=mine, license_id=None) if e.type == "webhook.update"]
    assert update.details["changes"]["enabled"] == {"before": True, "after": False}
