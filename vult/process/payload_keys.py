"""PAYLOAD_ENCRYPTION_KEYS, read: the settings check its form at start-up and the codec
(vult/temporal/codec.py) encrypts with what it yields."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyConfigError(ValueError):
    pass


def parse_keys(spec: str) -> dict[str, bytes]:
    """ "id1:base64key,id2:base64key" -> {id: key}, in order (the first one encrypts)."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id:
            raise KeyConfigError("each key must be written as id:base64key")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyConfigError(f"key {key_id!r} is not valid base64") from exc
        if len(key) not in (16, 24, 32):
            raise KeyConfigError(f"key {key_id!r} must be 16, 24 or 32 bytes for AES-GCM")
        if key_id in keys:
            raise KeyConfigError(f"key id {key_id!r} appears twice")
        keys[key_id] = key
    if not keys:
        raise KeyConfigError("no payload encryption key configured")
    return keys


def new_key_spec(key_id: str) -> str:
    """A fresh 256-bit key, written as PAYLOAD_ENCRYPTION_KEYS expects it."""
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"
