"""License keys: shape, forgiving input, typo detection, hashing."""

from __future__ import annotations

import re

import pytest

from shared.licensing.license_keys import MalformedKey, canonical_key, key_hash, new_license_key

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_new_keys_have_the_documented_shape_and_are_unique():
    keys = {new_license_key() for _ in range(500)}
    assert len(keys) == 500
    assert all(re.fullmatch(r"CDT(-[0-9A-HJKMNP-TV-Z]{4}){7}", k) for k in keys)


def test_canonical_form_forgives_case_spacing_and_lookalikes():
    key = new_license_key()
    sloppy = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert canonical_key(sloppy) == key
    assert canonical_key(key.replace("CDT-", "")) == key


def test_every_single_character_substitution_is_caught():
    key = new_license_key()
    body = key.replace("-", "")[3:]
    caught = total = 0
    for position in range(len(body)):
        for replacement in ALPHABET:
            if replacement == body[position]:
                continue
            total += 1
            typo = body[:position] + replacement + body[position + 1 :]
            try:
                canonical_key(typo)
            except MalformedKey:
                caught += 1
    assert caught / total > 0.99  # 10 check bits: ~1 in 1024 slips through


@pytest.mark.parametrize("text", ["", "CDT", "hello world", "CDT-" + "U" * 28, "CDT-" + "A" * 27])
def test_non_keys_are_malformed(text):
    with pytest.raises(MalformedKey):
        canonical_key(text)


def test_hash_is_of_the_canonical_spelling():
    key = new_license_key()
    assert key_hash(canonical_key(key.lower())) == key_hash(key)
    assert re.fullmatch(r"[0-9a-f]{64}", key_hash(key)) and key not in key_hash(key)
