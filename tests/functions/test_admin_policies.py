"""Seat policies through the admin function: written whole, checked against the license,
the tenant admin's but for the overdraft (the vendor's), audited and generation-bumped."""

from __future__ import annotations

import pytest


@pytest.fixture
def licensed(admin_api, tenants):
    """(tenant, license id) of a 5-seat license sold to the first tenant."""
    status, answer = admin_api("POST", "licenses", {"tenant": tenants[0], "max_seats": 5, "tier": "pro"},
                               role="owner", uid="vendor")
    assert status == 201, answer
    return tenants[0], answer["license"]["id"]


POLICY = {
    "groups": [
        {"name": "eng", "uids": ["u-ada", "u-bob"], "domains": ["Eng.Acme.COM"]},
        {"name": "contractors", "claim": {"name": "team", "value": "contract"}},
        {"name": "ops", "domains": ["ops.acme.com"]},
    ],
    "include": {"groups": ["eng", "contractors"], "users": ["Grace@Acme.com"]},
    "exclude": {"groups": ["ops"], "users": ["mallory"], "hardware": ["stolen-laptop"]},
    "reserve": [{"group": "eng", "seats": 2}],
    "max": [{"group": "contractors", "seats": 1}],
}
STORED = {  # as it is kept and read back: domains and email addresses in lower case
    **POLICY,
    "groups": [{**POLICY["groups"][0], "domains": ["eng.acme.com"]}, *POLICY["groups"][1:]],
    "include": {"groups": ["eng", "contractors"], "users": ["grace@acme.com"]},
}


def license_of(admin_api, tenant, license_id):
    status, answer = admin_api("GET", f"licenses/{license_id}", tenant=tenant)
    assert status == 200, answer
    return answer["license"]


def events_of(admin_api, tenant, license_id):
    return admin_api("GET", "events", tenant=tenant, query={"license": license_id})[1]["events"]


def test_a_tenant_admin_sets_a_policy_and_reads_it_back(admin_api, licensed, rt):
    tenant, license_id = licensed
    assert license_of(admin_api, tenant, license_id)["policy"] == {}
    generation = rt.seats.generation(license_id)

    status, answer = admin_api("PATCH", f"licenses/{license_id}", {"policy": POLICY}, tenant=tenant, uid="ops-1")

    assert status == 200, answer
    assert answer["license"]["policy"] == STORED and answer["seats"] == {"used": 0, "max": 5}
    assert license_of(admin_api, tenant, license_id)["policy"] == STORED
    # a policy-only change moves the generation as any change does: every cached copy is refused
    assert rt.seats.generation(license_id) != generation
    update = events_of(admin_api, tenant, license_id)[0]
    assert (update["type"], update["actor"]) == ("license.update", "ops-1")
    assert update["details"]["changes"] == {"policy": {"before": {}, "after": STORED}}
    # the stored document is what the seat functions load
    assert rt.store.get_license(license_id).policy.as_json() == STORED


def test_a_policy_replaces_the_whole_and_null_or_empty_restores_the_default(admin_api, licensed):
    tenant, license_id = licensed
    path = f"licenses/{license_id}"
    assert admin_api("PATCH", path, {"policy": POLICY}, tenant=tenant)[0] == 200
    smaller = {"groups": [{"name": "eng", "uids": ["u-ada"]}], "max": [{"group": "eng", "seats": 3}]}
    assert admin_api("PATCH", path, {"policy": smaller}, tenant=tenant)[1]["license"]["policy"] == smaller
    assert admin_api("PATCH", path, {"policy": {}}, tenant=tenant)[1]["license"]["policy"] == {}
    assert admin_api("PATCH", path, {"policy": smaller}, tenant=tenant)[0] == 200
    assert admin_api("PATCH", path, {"policy": None}, tenant=tenant)[1]["license"]["policy"] == {}
    changes = [e["details"]["changes"] for e in events_of(admin_api, tenant, license_id)
               if e["type"] == "license.update"]
    assert changes[0] == {"policy": {"before": smaller, "after": {}}}


def _group(name="eng", **members):
    return {"name": name, **(members or {"uids": ["u-1"]})}


BAD_POLICIES = [
    ({"groups": [_group(), _group("qa")], "reserve": [{"group": "eng", "seats": 3}, {"group": "qa", "seats": 3}]},
     "reservations (6 seats) exceed max_seats (5)"),
    ({"groups": [_group()], "reserve": [{"group": "eng", "seats": 6}]}, "seats must be between 1 and max_seats (5)"),
    ({"groups": [_group()], "max": [{"group": "design", "seats": 1}]},
     "max names group 'design', which the policy does not define"),
    ({"groups": [_group()], "include": {"groups": ["eng", "qa"]}},
     "include names groups the policy does not define: qa"),
    ({"groups": [_group(), _group()]}, "group names must be unique"),
    ({"groups": [_group()], "reserve": [{"group": "eng", "seats": 1}, {"group": "eng", "seats": 1}]},
     "reserve names a group twice"),
    ({"overdraft_ratio": 12.5}, "overdraft_ratio must be between 1 and 10"),
    ({"overdraft_ratio": 0.5}, "overdraft_ratio must be between 1 and 10"),
    ({"overdraft_seats": 51}, "overdraft_seats must be between 0 and 10 x max_seats"),
    ({"overdraft_seats": 2, "overdraft_ratio": 1.5}, "give overdraft_seats or overdraft_ratio, not both"),
    ({"groups": [{"name": "empty"}]}, "group 'empty' has no members: give uids, domains or a claim"),
    ({"groups": [{"name": "admins", "claim": {"name": "role", "value": "admin"}}]},
     "group 'admins': claim 'role' cannot define a group"),
    ({"groups": [{"name": "t", "claim": {"name": "tenant", "value": "x"}}]}, "claim 'tenant' cannot define a group"),
    ({"groups": [{"name": "Eng Team", "uids": ["u"]}]}, "group name 'Eng Team': 1-40 of a-z 0-9 _ . -"),
    ({"groups": [_group(domains=["not a domain"])]}, "the domains of group 'eng' must be domain names"),
    ({"exclude": {"users": ["ada@"]}}, "exclude.users: 'ada@' is neither a uid nor an email address"),
    ({"include": {"hardware": ["box"]}}, "include names users and groups, not hardware"),
]


@pytest.mark.parametrize("policy, says", BAD_POLICIES, ids=[says for _, says in BAD_POLICIES])
def test_a_policy_that_cannot_apply_is_400_naming_why_and_changes_nothing(admin_api, licensed, rt, policy, says):
    tenant, license_id = licensed
    before, events, generation = (license_of(admin_api, tenant, license_id), events_of(admin_api, tenant, license_id),
                                  rt.seats.generation(license_id))

    status, answer = admin_api("PATCH", f"licenses/{license_id}", {"policy": policy}, role="owner", uid="vendor")

    assert status == 400 and answer["error"]["code"] == "INVALID_REQUEST", answer
    assert answer["error"]["field"] == "policy" and says in answer["error"]["message"], answer["error"]
    assert license_of(admin_api, tenant, license_id) == before
    assert events_of(admin_api, tenant, license_id) == events and rt.seats.generation(license_id) == generation


BAD_SHAPES = [
    ({"groups": "eng"}, "policy.groups"),
    ({"groups": [{"name": "eng", "uids": ["u\nforged"]}]}, "policy.groups.0.uids.0"),
    ({"groups": [{"name": "eng", "uids": ["x" * 129]}]}, "policy.groups.0.uids.0"),
    ({"groups": [{"name": "eng", "uids": [7]}]}, "policy.groups.0.uids.0"),
    ({"groups": [{"name": "eng", "colour": "red"}]}, "policy.groups.0.colour"),
    ({"groups": [{"name": f"g{i}", "uids": ["u"]} for i in range(21)]}, "policy.groups"),
    ({"exclude": {"hardware": ["box\x1b[2J"]}}, "policy.exclude.hardware.0"),
    ({"exclude": {"users": ["u"] * 1001}}, "policy.exclude.users"),
    ({"reserve": [{"group": "eng", "seats": "2"}]}, "policy.reserve.0.seats"),
    ({"reserve": [{"group": "eng", "seats": 0}]}, "policy.reserve.0.seats"),
    ({"overdraft_seats": 1.5}, "policy.overdraft_seats"),
    ({"overdraft_ratio": "1.5"}, "policy.overdraft_ratio"),
    ({"groups": None}, "policy.groups"),
    ({"overdraft": 2}, "policy.overdraft"),
    ("everyone", "policy"),
]


@pytest.mark.parametrize("policy, field", BAD_SHAPES, ids=[field for _, field in BAD_SHAPES])
def test_a_policy_of_the_wrong_shape_is_400_naming_the_field(admin_api, licensed, policy, field):
    tenant, license_id = licensed
    before = license_of(admin_api, tenant, license_id)
    status, answer = admin_api("PATCH", f"licenses/{license_id}", {"policy": policy}, tenant=tenant)
    assert status == 400, answer
    assert field in [f["field"] for f in answer["error"]["fields"]], answer["error"]["fields"]
    assert license_of(admin_api, tenant, license_id) == before


def test_the_overdraft_is_the_vendors_the_rest_of_the_policy_the_tenant_admins(admin_api, licensed):
    tenant, license_id = licensed
    path = f"licenses/{license_id}"
    groups = {"groups": [_group()], "reserve": [{"group": "eng", "seats": 1}], "max": [{"group": "eng", "seats": 2}],
              "exclude": {"users": ["mallory"]}, "include": {"groups": ["eng"]}}

    assert admin_api("PATCH", path, {"policy": groups}, tenant=tenant)[0] == 200
    for overdraft in ({"overdraft_seats": 2}, {"overdraft_ratio": 1.5}):
        status, answer = admin_api("PATCH", path, {"policy": {**groups, **overdraft}}, tenant=tenant)
        [name] = overdraft
        assert status == 403 and answer["error"]["denied_fields"] == [f"policy.{name}"], answer
        assert f"only the platform owner (the vendor) changes entitlements: policy.{name}" in answer["error"]["message"]
    assert license_of(admin_api, tenant, license_id)["policy"] == groups

    # the vendor grants 1.5x: 2 more seats of 5 (floor(5 x 0.5))
    status, answer = admin_api("PATCH", path, {"policy": {**groups, "overdraft_ratio": 1.5}}, role="owner",
                               uid="vendor")
    assert status == 200 and answer["license"]["policy"]["overdraft_ratio"] == 1.5
    # the admin changes the rest, sending the overdraft back as it is
    narrower = {**groups, "max": [{"group": "eng", "seats": 1}], "overdraft_ratio": 1.5}
    assert admin_api("PATCH", path, {"policy": narrower}, tenant=tenant)[1]["license"]["policy"] == narrower
    # leaving it out (or resetting the policy) would take the vendor's grant away: 403, saying what to send
    for without in (groups, {}, None):
        status, answer = admin_api("PATCH", path, {"policy": without}, tenant=tenant)
        assert status == 403 and answer["error"]["denied_fields"] == ["policy.overdraft_ratio"], answer
        assert "send the policy with the overdraft it has (overdraft_ratio 1.5)" in answer["error"]["message"]
    status, answer = admin_api("PATCH", path, {"policy": {**groups, "overdraft_seats": 3}}, tenant=tenant)
    assert status == 403 and answer["error"]["denied_fields"] == ["policy.overdraft_seats", "policy.overdraft_ratio"]
    assert license_of(admin_api, tenant, license_id)["policy"] == narrower
    # the vendor takes it back
    assert admin_api("PATCH", path, {"policy": groups}, role="owner", uid="vendor")[1]["license"]["policy"] == groups


def test_an_end_user_and_another_tenants_admin_neither_read_nor_write_a_policy(admin_api, licensed, tenants):
    tenant, license_id = licensed
    assert admin_api("PATCH", f"licenses/{license_id}", {"policy": POLICY}, tenant=tenant)[0] == 200
    other = tenants[1]
    for method, body in (("GET", None), ("PATCH", {"policy": {}}), ("PATCH", {"policy": POLICY})):
        status, answer = admin_api(method, f"licenses/{license_id}", body, tenant=other, uid="admin-b")
        assert status == 404 and answer["error"]["code"] == "NOT_FOUND" and "u-ada" not in str(answer)
        status, answer = admin_api(method, f"licenses/{license_id}", body, role=None, uid="u-bob")
        assert status == 403 and "u-ada" not in str(answer)
    listed = admin_api("GET", "licenses", tenant=other, query={"limit": "500"})[1]["licenses"]
    assert license_id not in [lic["id"] for lic in listed]
    assert license_of(admin_api, tenant, license_id)["policy"] == STORED


def test_max_seats_cannot_drop_below_what_the_policy_reserves(admin_api, licensed):
    tenant, license_id = licensed
    path = f"licenses/{license_id}"
    policy = {"groups": [_group(), _group("qa")], "overdraft_seats": 10,
              "reserve": [{"group": "eng", "seats": 2}, {"group": "qa", "seats": 2}]}
    assert admin_api("PATCH", path, {"policy": policy}, role="owner", uid="vendor")[0] == 200

    status, answer = admin_api("PATCH", path, {"max_seats": 3}, role="owner", uid="vendor")

    assert status == 400 and answer["error"]["field"] == "max_seats", answer
    assert "max_seats 3 does not fit the license's seat policy: reservations (4 seats) exceed max_seats (3)" \
        in answer["error"]["message"]
    assert license_of(admin_api, tenant, license_id)["max_seats"] == 5
    # an overdraft in seats is held to 10 x max_seats too
    status, answer = admin_api("PATCH", path, {"max_seats": 4, "policy": {**policy, "overdraft_seats": 41}},
                               role="owner", uid="vendor")
    assert status == 400 and "overdraft_seats must be between 0 and 10 x max_seats" in answer["error"]["message"]
    # both in one request: checked together, as they will be
    smaller = {**policy, "reserve": [{"group": "eng", "seats": 2}, {"group": "qa", "seats": 1}]}
    status, answer = admin_api("PATCH", path, {"max_seats": 3, "policy": smaller}, role="owner", uid="vendor")
    assert status == 200 and answer["license"]["max_seats"] == 3 and answer["license"]["policy"] == smaller
    # raising max_seats re-checks nothing that could fail; the ratio's seats follow it
    assert admin_api("PATCH", path, {"max_seats": 8}, role="owner", uid="vendor")[0] == 200


def test_the_vendor_sells_a_license_with_its_policy(admin_api, tenants):
    tenant = tenants[0]
    body = {"tenant": tenant, "max_seats": 4, "tier": "pro", "policy": {**POLICY, "overdraft_ratio": 1.25}}
    status, answer = admin_api("POST", "licenses", body, role="owner", uid="vendor")
    assert status == 201, answer
    license_id = answer["license"]["id"]
    assert answer["license"]["policy"] == {**STORED, "overdraft_ratio": 1.25}
    assert license_of(admin_api, tenant, license_id)["policy"] == {**STORED, "overdraft_ratio": 1.25}
    [created] = events_of(admin_api, tenant, license_id)
    assert created["details"]["after"]["policy"] == {**STORED, "overdraft_ratio": 1.25}

    for policy, says in (({**POLICY, "reserve": [{"group": "eng", "seats": 5}]}, "reservations (5 seats)"),
                         ({"groups": [{"name": "x"}]}, "group 'x' has no members")):
        status, answer = admin_api("POST", "licenses", {**body, "policy": policy}, role="owner", uid="vendor")
        assert status == 400 and answer["error"]["field"] == "policy" and says in answer["error"]["message"]
    assert [lic["id"] for lic in admin_api("GET", "licenses", tenant=tenant)[1]["licenses"]] == [license_id]
    default = admin_api("POST", "licenses", {**body, "policy": None}, role="owner", uid="vendor")[1]
    assert default["license"]["policy"] == {}


# -- any policy: accepted only if it can apply, read back as written; refused, nothing changes --

def _policies():
    from hypothesis import strategies as st

    names = st.sampled_from(["eng", "qa", "ops", "Eng", "x y", "a" * 41])
    group = st.fixed_dictionaries({"name": names}, optional={
        "uids": st.lists(st.sampled_from(["u-1", "u-2", "u\x07", ""]), max_size=3),
        "domains": st.lists(st.sampled_from(["acme.com", "Eng.Acme.COM", "not a domain"]), max_size=2),
        "claim": st.fixed_dictionaries({"name": st.sampled_from(["team", "role", "9x"]),
                                        "value": st.sampled_from(["a", "b"])}),
    })
    rule = st.fixed_dictionaries({}, optional={
        "groups": st.lists(names, max_size=3),
        "users": st.lists(st.sampled_from(["u-1", "Ada@Acme.com", "bad@", "x" * 129]), max_size=3),
        "hardware": st.lists(st.sampled_from(["hw-1", "hw 2", "hw\n3"]), max_size=2),
    })
    seats = st.fixed_dictionaries({"group": names, "seats": st.integers(-1, 7)})
    return st.fixed_dictionaries({}, optional={
        "groups": st.lists(group, max_size=4), "include": rule, "exclude": rule,
        "reserve": st.lists(seats, max_size=3), "max": st.lists(seats, max_size=3),
        "overdraft_seats": st.integers(-1, 60), "overdraft_ratio": st.floats(0.5, 12, allow_nan=False),
    })


def test_any_policy_is_accepted_only_if_it_can_apply(admin_api, licensed, rt):
    from hypothesis import HealthCheck, given, settings

    from shared.domain import SeatPolicy

    tenant, license_id = licensed
    outcomes = {200: 0, 400: 0}

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(policy=_policies())
    def check(policy):
        before, generation = license_of(admin_api, tenant, license_id), rt.seats.generation(license_id)
        status, answer = admin_api("PATCH", f"licenses/{license_id}", {"policy": policy}, role="owner", uid="vendor")
        assert status in (200, 400), (status, answer)
        outcomes[status] += 1
        if status == 400:
            assert license_of(admin_api, tenant, license_id) == before
            assert rt.seats.generation(license_id) == generation
            return
        stored = answer["license"]["policy"]
        assert SeatPolicy.from_json(stored).problems(5) == [] and SeatPolicy.from_json(stored).as_json() == stored
        assert license_of(admin_api, tenant, license_id)["policy"] == stored

    check()
    print(f"policies accepted {outcomes[200]}, refused {outcomes[400]}")
    assert outcomes[200] > 10 and outcomes[400] > 10, outcomes
