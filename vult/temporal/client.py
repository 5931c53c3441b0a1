"""Connecting to Temporal, the same way for the worker, the API, the tests and the CLI docs."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from vult.process.payload_keys import parse_keys
from vult.process.settings import Settings
from vult.temporal.codec import EncryptionCodec


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic models as JSON, then (when keys are configured) AES-GCM encrypted; failure
    messages and stack traces are moved into the encrypted attributes as well."""
    spec = settings.payload_encryption_keys.get_secret_value()
    if not spec:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(parse_keys(spec)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
    )
