"""Pure rules: settings, principals, license admission."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings
from shared.domain import License, Principal
from shared.domain.times import parse_rfc3339, rfc3339
from shared.ids import RandomIds, license_id_of_session


def license_with(**fields) -> License:
    base = dict(id="lic_x", tenant_id="acme", max_seats=1, tier="t", features=(), expires_ms=None, suspended=False,
                allowed_domains=(), lease_ttl_s=360, heartbeat_interval_s=300, key_hash="h", created_ms=0, updated_ms=0)
    return License(**{**base, **fields})


def test_settings_have_documented_defaults_and_reject_garbage():
    settings = Settings.from_env({"REDIS_URL": "redis://r"})
    assert (settings.project_id, settings.default_lease_ttl_s, settings.max_body_bytes) == ("demo-coditect", 360, 65536)
    assert settings.auth_emulated is False
    with pytest.raises(ConfigError, match="DEFAULT_LEASE_TTL_S"):
        Settings.from_env({"DEFAULT_LEASE_TTL_S": "six"})
    with pytest.raises(ConfigError, match="lease_root_kms_key"):
        settings.require("lease_root_kms_key")
    assert (settings.usage_retention_days, settings.usage_checkpoint_shards) == (400, 1)
    for name in ("USAGE_RETENTION_DAYS", "USAGE_CHECKPOINT_SHARDS"):
        with pytest.raises(ConfigError, match=f"{name} must be at least 1"):
            Settings.from_env({name: "0"})


def test_emulator_tokens_are_refused_outside_demo_projects():
    assert Settings.from_env({"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}).auth_emulated is True
    assert Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-x", "FIREBASE_AUTH_EMULATOR_HOST": "h:1"}).auth_emulated
    with pytest.raises(ConfigError, match="not a demo-\\* project"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "coditect-prod", "FIREBASE_AUTH_EMULATOR_HOST": "h:1"})
    from shared.auth.firebase_tokens import FirebaseTokenVerifier

    with pytest.raises(ConfigError, match="only demo"):
        FirebaseTokenVerifier("coditect-prod", emulated=True)


def test_admins_administer_only_their_tenant_and_owners_all():
    assert Principal("a", tenant="acme", role="admin").administers("acme")
    assert not Principal("a", tenant="acme", role="admin").administers("other")
    assert not Principal("u", tenant="acme").administers("acme")
    assert Principal("o", role="owner").administers("anything")


def test_allowed_domains_need_a_verified_matching_email():
    restricted = license_with(allowed_domains=("acme.com",))
    assert license_with().admits_email(None, False)
    assert restricted.admits_email("ann@ACME.com", True)
    assert not restricted.admits_email("ann@acme.com", False)
    assert not restricted.admits_email("ann@notacme.com", True)
    assert not restricted.admits_email("acme.com", True)


def test_license_expiry_is_inclusive_of_the_instant():
    assert license_with(expires_ms=1000).is_expired(1000)
    assert not license_with(expires_ms=1000).is_expired(999)


def test_session_ids_name_their_license():
    ids = RandomIds()
    lic = ids.license_id()
    assert license_id_of_session(ids.session_id(lic)) == lic
    assert license_id_of_session("lic_x.y") is None
    assert license_id_of_session("{lic_aaaaaaaaaaaaaaaaaaaa}.AAAAAAAAAAAAAAAAAAAAAA") is None


def test_times_round_trip_in_rfc3339():
    assert rfc3339(1_795_000_000_123) == "2026-11-18T11:06:40.123Z"
    assert parse_rfc3339("2026-11-18T11:06:40.123Z") == 1_795_000_000_123
    with pytest.raises(ValueError):
        parse_rfc3339("2026-11-18T08:26:40")


def test_licensectl_shows_control_characters_inert():
    from cli.licensectl import _inert

    shown = _inert({"name": "Acme\x1b[2J\nforged line", "seats": 3, "tags": ["ok\x07"]})
    assert shown == {"name": "Acme\\x1b[2J\\nforged line", "seats": 3, "tags": ["ok\\x07"]}
