"""Payload encryption: what Temporal stores is ciphertext naming its key; keys rotate."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter

from vult.process.payload_keys import KeyConfigError, new_key_spec, parse_keys
from vult.process.settings import Settings
from vult.temporal.client import data_converter
from vult.temporal.codec import ENCODING, KEY_ID, EncryptionCodec

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"customer_email":"ann@example.com"}')


async def test_a_payload_is_encrypted_with_its_key_id_and_decrypts_back() -> None:
    codec = EncryptionCodec(parse_keys(new_key_spec("k1")))
    (sealed,) = await codec.encode([PLAIN])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"ann@example.com" not in sealed.data
    assert await codec.decode([sealed]) == [PLAIN]


async def test_the_same_payload_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec(parse_keys(new_key_spec("k1")))
    first, second = await codec.encode([PLAIN, PLAIN])
    assert first.data != second.data


async def test_an_old_key_still_decrypts_after_rotation() -> None:
    old = new_key_spec("old")
    (sealed,) = await EncryptionCodec(parse_keys(old)).encode([PLAIN])
    rotated = EncryptionCodec(parse_keys(f"{new_key_spec('new')},{old}"))
    assert await rotated.decode([sealed]) == [PLAIN]
    (resealed,) = await rotated.encode([PLAIN])
    assert resealed.metadata[KEY_ID] == b"new"


async def test_a_payload_under_an_unknown_key_is_refused() -> None:
    (sealed,) = await EncryptionCodec(parse_keys(new_key_spec("gone"))).encode([PLAIN])
    with pytest.raises(ValueError, match="unknown key id 'gone'"):
        await EncryptionCodec(parse_keys(new_key_spec("other"))).decode([sealed])


async def test_unencrypted_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(parse_keys(new_key_spec("k1")))
    assert await codec.decode([PLAIN]) == [PLAIN]


@pytest.mark.parametrize(
    "spec",
    ["", "nocolon", "k1:not base64!", "k1:AAAA", f"{new_key_spec('a')},a:" + "A" * 44],
    ids=["empty", "nocolon", "not-base64", "short", "id-twice"],  # the key is random
)
def test_bad_key_configuration_is_refused(spec: str) -> None:
    with pytest.raises(KeyConfigError):
        parse_keys(spec)


async def test_failure_messages_are_encoded_too() -> None:
    settings = Settings(payload_encryption_keys=new_key_spec("k1"))
    converter: DataConverter = data_converter(settings)
    failure = Failure()
    await converter.encode_failure(ValueError("card 4242 for ann@example.com"), failure)
    assert "ann@example.com" not in failure.message
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert "ann@example.com" in str(decoded)
