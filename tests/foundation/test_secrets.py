"""SecretBox: a key ring where every sealed value names its key."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coves.secrets import (
    LEGACY_KEY_ID,
    SealedValueError,
    Secret,
    SecretBox,
    UnknownKey,
    sealed_key_id,
)


def new_key() -> Secret:
    return Secret(base64.b64encode(os.urandom(32)).decode())


def test_seal_opens_with_its_context_only() -> None:
    box = SecretBox(new_key())
    sealed = box.seal(b"hunter2", context="row-1")
    assert box.open(sealed, context="row-1") == b"hunter2"
    assert b"hunter2" not in sealed
    with pytest.raises(SealedValueError):
        box.open(sealed, context="row-2")


def test_sealed_value_names_the_current_key() -> None:
    box = SecretBox(new_key())
    sealed = box.seal(b"x", context="c")
    assert sealed_key_id(sealed) == box.current_key_id
    assert box.is_current(sealed)


def test_old_keys_open_what_they_sealed_and_new_values_use_the_current_key() -> None:
    old, new = new_key(), new_key()
    sealed_old = SecretBox(old).seal(b"before", context="c")
    ring = SecretBox(new, old_keys=[old])
    assert ring.open(sealed_old, context="c") == b"before"
    assert not ring.is_current(sealed_old)
    fresh = ring.seal(b"after", context="c")
    assert ring.is_current(fresh)
    assert SecretBox(new).open(fresh, context="c") == b"after"
    assert ring.key_ids == [SecretBox(new).current_key_id, SecretBox(old).current_key_id]


def test_a_missing_key_is_named() -> None:
    old, new = new_key(), new_key()
    sealed = SecretBox(old).seal(b"x", context="c")
    with pytest.raises(UnknownKey) as info:
        SecretBox(new).open(sealed, context="c")
    assert info.value.key_id == SecretBox(old).current_key_id


def test_values_from_before_key_ids_still_open() -> None:
    """The 0x01 envelope (no key id) that earlier versions wrote."""
    old = new_key()
    raw = base64.b64decode(old.reveal())
    nonce = os.urandom(12)
    legacy = b"\x01" + nonce + AESGCM(raw).encrypt(nonce, b"legacy", b"c")
    assert sealed_key_id(legacy) == LEGACY_KEY_ID
    ring = SecretBox(new_key(), old_keys=[old])
    assert ring.open(legacy, context="c") == b"legacy"
    assert not ring.is_current(legacy)
    with pytest.raises(SealedValueError):
        SecretBox(new_key()).open(legacy, context="c")


@pytest.mark.parametrize("damaged", [b"", b"\x02", b"\x03" + b"\0" * 40, b"\x01short"])
def test_garbage_is_refused(damaged: bytes) -> None:
    with pytest.raises(SealedValueError):
        SecretBox(new_key()).open(damaged, context="c")


def test_flipped_bit_is_refused() -> None:
    box = SecretBox(new_key())
    sealed = bytearray(box.seal(b"x", context="c"))
    sealed[-1] ^= 1
    with pytest.raises(SealedValueError):
        box.open(bytes(sealed), context="c")
