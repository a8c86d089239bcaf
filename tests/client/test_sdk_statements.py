"""Signed usage statements verified offline: the delegation chain as for lease tokens, no
expiry (a record, verified months later), the claims' shape, the hourly series' hash, and
`coditect-license verify-statement`. Statements are signed by hand with a test's own root."""

from __future__ import annotations

import calendar
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hand_signed import Root, lease_claims, lease_token, statement, statement_claims
from hand_signed import json_segment as _json
from hand_signed import segments as _segments
from sdk_processes import run_cli

from coditect_license import TokenInvalid, series_sha256, verify_lease_token, verify_statement
from coditect_license.cli import EXIT_CODES
from coditect_license.tokens import keys_by_kid

ISSUED = calendar.timegm((2025, 4, 1, 0, 5, 0))  # five minutes after March 2025 closed
CERT_IAT, CERT_EXP = ISSUED - 600, ISSUED + 3000  # the delegate's hour
MONTHS_LATER = ISSUED + 200 * 86400
NO_PINS = {"CODITECT_TRUSTED_ROOTS": ""}


def march_rows() -> list[dict]:
    """An hourly series of March 2025 (744 rows), one value not ASCII."""
    rows = []
    for hour in range(31 * 24):
        day, at = divmod(hour, 24)
        rows.append({"start": f"2025-03-{day + 1:02d}T{at:02d}:00:00Z", "peak": hour % 10, "grants": hour % 7,
                     "average": round((hour % 10) / 3, 3), "seat_hours": round((hour % 10) * 0.75, 3)})
    rows[5]["group"] = "Zürich"
    return rows


@pytest.fixture
def root() -> Root:
    return Root.new()


def signed(root: Root, **claims) -> str:
    """A statement of March 2025 by `root` (claims overridable by name)."""
    rows = march_rows()
    base = statement_claims(iat=ISSUED, series_count=len(rows), series_sha256=series_sha256(rows))
    return statement(root, {**base, **claims}, cert_iat=CERT_IAT, cert_exp=CERT_EXP)


def resealed(token: str, claims: dict) -> str:
    """`token` with its payload replaced by `claims`, the signature kept."""
    head, _, signature = token.split(".")
    return f"{head}.{_json(claims)}.{signature}"


def test_series_sha256_is_json_lines_v1():
    rows = march_rows()
    expected = hashlib.sha256(b"".join(
        json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        for row in rows)).hexdigest()
    assert series_sha256(rows) == expected
    assert series_sha256([dict(reversed(list(row.items()))) for row in rows]) == expected  # key order: none
    assert "Zürich".encode() in json.dumps(rows[5], ensure_ascii=False).encode("utf-8")
    assert series_sha256([]) == hashlib.sha256(b"").hexdigest()


def test_a_valid_statement_verifies(root):
    token = signed(root)
    claims = verify_statement(token, root.jwks(), now=ISSUED + 60)
    assert claims == _segments(token)[1]
    assert claims["sub"] == "lic_hand" and claims["month"] == "2025-03" and claims["final"] is True
    # the keys as verify_lease_token takes them, and with the root pinned
    assert verify_statement(token, keys_by_kid(root.jwks()), now=ISSUED + 60) == claims
    assert verify_statement(token, root.jwks(), trusted_roots=[root.kid], now=ISSUED + 60) == claims
    # the pin is the key's own thumbprint: the kid a jwks document states plays no part
    assert verify_statement(token, {"keys": [{**root.jwk, "kid": "whatever"}]}, trusted_roots=[root.kid]) == claims
    # a month not over yet: figures through the last closed hour
    partial = signed(root, month="2025-03", final=False, through="2025-03-14T15:00:00Z")
    assert verify_statement(partial, root.jwks())["through"] == "2025-03-14T15:00:00Z"
    december = statement(root, statement_claims(iat=ISSUED, month="2024-12"), cert_iat=CERT_IAT, cert_exp=CERT_EXP)
    assert verify_statement(december, root.jwks())["to"] == "2025-01-01T00:00:00Z"


def test_an_old_statement_still_verifies_long_after_its_certificate_expired(root):
    token = signed(root)
    assert verify_statement(token, root.jwks(), now=MONTHS_LATER)["month"] == "2025-03"
    assert verify_statement(token, root.jwks()) and verify_statement(token, root.jwks(), now=MONTHS_LATER * 2)


def test_a_statement_issued_in_the_future_is_refused(root):
    token = signed(root)
    assert verify_statement(token, root.jwks(), now=ISSUED - 59)  # within CLOCK_SKEW_S (60 s)
    with pytest.raises(TokenInvalid, match="in the future"):
        verify_statement(token, root.jwks(), now=ISSUED - 61)


@pytest.mark.parametrize("name", ["peak", "p95", "average", "seat_hours", "hours_at_full", "denials", "overage_peak",
                                  "grants", "right_size_99"])
def test_tampering_any_figure_fails(root, name):
    token = signed(root)
    claims = _segments(token)[1]
    changed = {**claims, "figures": {**claims["figures"], name: claims["figures"][name] + 1}}
    with pytest.raises(TokenInvalid, match="bad signature"):
        verify_statement(resealed(token, changed), root.jwks())
    lowered = {**claims, "figures": {**claims["figures"], name: max(0, claims["figures"][name] - 1)}}
    if lowered != claims:
        with pytest.raises(TokenInvalid, match="bad signature"):
            verify_statement(resealed(token, lowered), root.jwks())


def test_tampering_anything_else_fails(root):
    token = signed(root)
    claims = _segments(token)[1]
    forged = {
        "license": {**claims, "sub": "lic_other"},
        "seats": {**claims, "max_seats": 50},
        "not final": {**claims, "final": False},
        "another month": {**claims, "month": "2025-02", "from": "2025-02-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"},
        "series hash": {**claims, "series": {**claims["series"], "sha256": "f" * 64}},
    }
    for name, payload in forged.items():
        with pytest.raises(TokenInvalid) as refused:
            verify_statement(resealed(token, payload), root.jwks())
        assert refused.value.message == "bad signature", name
    head, body, signature = token.split(".")
    flipped = f"{head}.{body}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    with pytest.raises(TokenInvalid, match="bad signature"):
        verify_statement(flipped, root.jwks())
    with pytest.raises(TokenInvalid, match="bad signature"):  # the genuine statement, another root's key
        verify_statement(token, {root.kid: {**Root.new().jwk, "kid": root.kid}})


def test_a_lease_token_is_not_a_statement_and_a_statement_not_a_lease_token(root):
    keys = {root.kid: root.jwk}
    lease = lease_token(root, lease_claims(iat=ISSUED, exp=ISSUED + 60), cert_iat=CERT_IAT, cert_exp=CERT_EXP,
                        lease_max_s=3600)
    assert verify_lease_token(lease, keys, now=ISSUED + 1).license_id == "lic_hand"
    with pytest.raises(TokenInvalid, match="not a usage statement"):
        verify_statement(lease, keys, now=ISSUED + 1)
    # a statement's own claims, signed as a lease token: still not a statement
    as_lease = statement(root, _segments(signed(root))[1], cert_iat=CERT_IAT, cert_exp=CERT_EXP, typ="lease+jwt")
    with pytest.raises(TokenInvalid, match="not a usage statement"):
        verify_statement(as_lease, keys)
    # and the other way round: the typ check refuses it before anything else
    with pytest.raises(TokenInvalid, match="not a lease token"):
        verify_lease_token(signed(root), keys, now=ISSUED + 1)
    untyped = statement(root, _segments(signed(root))[1], cert_iat=CERT_IAT, cert_exp=CERT_EXP, typ="JWT")
    with pytest.raises(TokenInvalid, match="not a usage statement"):
        verify_statement(untyped, keys)


def test_issued_outside_its_certificates_validity_is_refused(root):
    for iat in (CERT_IAT, CERT_EXP):  # the bounds are inside
        token = statement(root, statement_claims(iat=iat), cert_iat=CERT_IAT, cert_exp=CERT_EXP)
        assert verify_statement(token, root.jwks())["iat"] == iat
    for iat in (CERT_IAT - 1, CERT_EXP + 1, CERT_EXP + 86400):  # a leaked delegate key, used after its hour
        token = statement(root, statement_claims(iat=iat), cert_iat=CERT_IAT, cert_exp=CERT_EXP)
        with pytest.raises(TokenInvalid, match="outside its certificate's validity"):
            verify_statement(token, root.jwks())
    other_issuer = statement(root, statement_claims(iat=ISSUED), cert_iat=CERT_IAT, cert_exp=CERT_EXP,
                             issuer="https://elsewhere.example")
    with pytest.raises(TokenInvalid, match="issuers differ"):
        verify_statement(other_issuer, root.jwks())


def test_only_pinned_roots_are_used_when_trusted_roots_are_given(root):
    token = signed(root)
    with pytest.raises(TokenInvalid, match="not one of the trusted roots"):
        verify_statement(token, root.jwks(), trusted_roots=[Root.new().kid])  # genuine, but not pinned
    impostor = Root.new().jwk  # a key document calling another key by the pinned kid
    with pytest.raises(TokenInvalid, match="not one of the trusted roots"):
        verify_statement(token, {root.kid: {**impostor, "kid": root.kid}}, trusted_roots=[root.kid])
    with pytest.raises(TokenInvalid, match="not in the jwks"):
        verify_statement(token, {"keys": [{**impostor, "kid": root.kid}]}, trusted_roots=[root.kid])
    with pytest.raises(TokenInvalid, match="not in the jwks"):
        verify_statement(token, Root.new().jwks())
    for malformed in ("one-string-not-a-list", ["not-a-thumbprint"], []):
        with pytest.raises(ValueError):
            verify_statement(token, root.jwks(), trusted_roots=malformed)


def test_the_series_must_be_the_one_signed(root):
    token, rows = signed(root), march_rows()
    assert verify_statement(token, root.jwks(), series=rows)["series"]["count"] == 744
    assert verify_statement(token, root.jwks(), series={"granularity": "hour", "series": rows})  # the report itself
    with pytest.raises(TokenInvalid, match="series count mismatch"):
        verify_statement(token, root.jwks(), series=rows[:-1])
    with pytest.raises(TokenInvalid, match="series count mismatch"):
        verify_statement(token, root.jwks(), series=[*rows, rows[-1]])
    changed = [dict(row) for row in rows]
    changed[100]["peak"] += 1
    with pytest.raises(TokenInvalid, match="series sha256 mismatch"):
        verify_statement(token, root.jwks(), series=changed)
    with pytest.raises(TokenInvalid, match="series sha256 mismatch"):  # same rows, another order
        verify_statement(token, root.jwks(), series=[rows[1], rows[0], *rows[2:]])
    for malformed in ({"rows": rows}, "rows", [1, 2]):
        with pytest.raises(ValueError):
            verify_statement(token, root.jwks(), series=malformed)


@pytest.mark.parametrize("change, message", [
    ({"iat": float(ISSUED)}, "'iat' must be an integer"),
    ({"sub": ""}, "'sub' must be a non-empty string"),
    ({"tenant": None}, "'tenant' must be a non-empty string"),
    ({"month": "2025-13"}, "'month' is not YYYY-MM"),
    ({"from": "2025-03-02T00:00:00Z"}, "'from' of month 2025-03 must be"),
    ({"to": "2025-03-31T23:59:59Z"}, "'to' of month 2025-03 must be"),
    ({"final": "yes"}, "'final' must be true or false"),
    ({"through": "2025-04-02T00:00:00Z"}, "'through' .* is outside the month"),
    ({"through": "14 March"}, "'through' is not an RFC 3339 UTC time"),
    ({"max_seats": "10"}, "'max_seats' must be an integer"),
    ({"figures": None}, "'figures' must be an object"),
    ({"figures": {"peak": 1}}, "figure 'p95' must be an integer"),
    ({"series": {"granularity": "day", "count": 0, "sha256": "0" * 64, "canonical": "json-lines-v1"}},
     "granularity 'day'"),
    ({"series": {"granularity": "hour", "count": 0, "sha256": "0" * 64, "canonical": "csv"}}, "canonical form 'csv'"),
    ({"series": {"granularity": "hour", "count": -1, "sha256": "0" * 64, "canonical": "json-lines-v1"}},
     "series 'count' must be an integer"),
    ({"series": {"granularity": "hour", "count": 0, "sha256": "XYZ", "canonical": "json-lines-v1"}},
     "'sha256' must be 64 lowercase hex"),
])
def test_a_malformed_statement_is_refused_with_a_clear_message(root, change, message):
    with pytest.raises(TokenInvalid, match=message):
        verify_statement(signed(root, **change), root.jwks())


@pytest.mark.parametrize("name, value", [("peak", 1.5), ("denials", True), ("average", "4.2"), ("seat_hours", -1)])
def test_a_figure_of_the_wrong_type_is_refused(root, name, value):
    claims = statement_claims(iat=ISSUED, **{name: value})
    with pytest.raises(TokenInvalid, match=f"figure '{name}' must be"):
        verify_statement(statement(root, claims, cert_iat=CERT_IAT, cert_exp=CERT_EXP), root.jwks())


@pytest.fixture
def files(root, tmp_path):
    """The statement, the root's jwks and the matching report, as files."""
    token, rows = signed(root), march_rows()
    paths = {"statement": tmp_path / "statement.jws", "jwks": tmp_path / "jwks.json",
             "report": tmp_path / "report.json", "tampered": tmp_path / "tampered.jws",
             "changed": tmp_path / "changed.json"}
    paths["statement"].write_text(token + "\n")
    paths["jwks"].write_text(json.dumps(root.jwks()))
    paths["report"].write_text(json.dumps({"granularity": "hour", "series": rows}, ensure_ascii=False))
    claims = _segments(token)[1]
    paths["tampered"].write_text(resealed(token, {**claims, "figures": {**claims["figures"], "peak": 3}}))
    rows[7]["grants"] += 1
    paths["changed"].write_text(json.dumps(rows))
    return {name: str(path) for name, path in paths.items()}


def test_cli_verify_statement(files, root):
    ok = run_cli("verify-statement", files["statement"], "--jwks", files["jwks"], env=NO_PINS)
    assert ok.returncode == 0, ok.stderr
    for shown in ("valid usage statement", "signature: valid", "lic_hand (tenant t-hand)", "2025-03 (final)",
                  "peak:", "right_size_99:", "seat_hours:", "not checked"):
        assert shown in ok.stdout, shown

    as_json = run_cli("verify-statement", "-", "--jwks", files["jwks"], "--json", "--series", files["report"],
                      input=open(files["statement"]).read(), env=NO_PINS)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["figures"]["peak"] == 9

    pinned = run_cli("verify-statement", files["statement"], "--jwks", files["jwks"], "--series", files["report"],
                     f"--trusted-root={root.kid}")
    assert pinned.returncode == 0 and "matches the series given" in pinned.stdout, pinned.stderr

    tampered = run_cli("verify-statement", files["tampered"], "--jwks", files["jwks"], env=NO_PINS)
    assert tampered.returncode == EXIT_CODES["TOKEN_INVALID"] == 18
    assert "bad signature" in tampered.stderr and "TOKEN_INVALID" in tampered.stderr and not tampered.stdout

    mismatch = run_cli("verify-statement", files["statement"], "--jwks", files["jwks"], "--series", files["changed"],
                       env=NO_PINS)
    assert mismatch.returncode == 18 and "series sha256 mismatch" in mismatch.stderr

    unpinned = run_cli("verify-statement", files["statement"], "--jwks", files["jwks"],
                       f"--trusted-root={Root.new().kid}")
    assert unpinned.returncode == 18 and "not one of the trusted roots" in unpinned.stderr


def test_cli_verify_statement_needs_keys_it_trusts(files, root):
    nothing = run_cli("verify-statement", files["statement"], env=NO_PINS)
    assert nothing.returncode == EXIT_CODES["TRUST_NOT_PINNED"] and "--trusted-root" in nothing.stderr
    missing = run_cli("verify-statement", files["statement"] + ".nope", "--jwks", files["jwks"], env=NO_PINS)
    assert missing.returncode == EXIT_CODES["USAGE"] and "cannot read the statement" in missing.stderr
    plain = run_cli("verify-statement", files["statement"], "--jwks", "http://example.com/jwks", env=NO_PINS)
    assert plain.returncode == EXIT_CODES["USAGE"] and "must be https://" in plain.stderr
    assert "Traceback" not in nothing.stderr + missing.stderr + plain.stderr


def test_cli_verify_statement_with_a_jwks_url_or_the_servers_jwks(files, root):
    body = json.dumps(root.jwks()).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pin = f"--trusted-root={root.kid}"
    try:
        ok = run_cli("verify-statement", files["statement"], "--jwks", f"{base}/jwks", pin)
        assert ok.returncode == 0 and "signature: valid" in ok.stdout, ok.stderr
        # no --jwks: the server's GET jwks, as `verify` gets it (pins required), cached for later
        fetched = run_cli("verify-statement", files["statement"], "--server", base, pin)
        assert fetched.returncode == 0 and "signature: valid" in fetched.stdout, fetched.stderr
    finally:
        server.shutdown()
        server.server_close()
    offline = run_cli("verify-statement", files["statement"], "--server", base, "--offline", pin)
    assert offline.returncode == 0 and "signature: valid" in offline.stdout, offline.stderr
    unpinned = run_cli("verify-statement", files["statement"], "--server", base, "--offline",
                       f"--trusted-root={Root.new().kid}")
    assert unpinned.returncode == 18 and "not one of the trusted roots" in unpinned.stderr
