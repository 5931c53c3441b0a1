"""The FastAPI application. Engines and clients are built in the lifespan, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import metrics
from api.admission import Admission
from api.client_limits import ClientLimits
from api.cors import RoutedCORS
from api.deps import Resources
from api.errors import install_error_handlers
from api.guard_rails import GuardRails
from api.openapi import DocumentedFastAPI
from api.order_changes import OrderChanges
from api.order_commands import OrderCommands
from api.routes import codec, health, ops, ops_events, orders, products, shop, webhooks
from vult import release
from vult.db.engine import make_engine
from vult.process.logging import configure_logging
from vult.process.payload_keys import parse_keys
from vult.process.settings import Settings, get_settings
from vult.temporal.client import connect
from vult.temporal.codec import EncryptionCodec


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
        client = temporal or await connect(settings)
        spec = settings.payload_encryption_keys.get_secret_value()
        order_changes = OrderChanges(settings.database_url)
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            temporal=client,
            codec=EncryptionCodec(parse_keys(spec)) if spec else None,
            commands=OrderCommands(
                client,
                settings.temporal_task_queue,
                settings.order_timing(),
                settings.pricing(),
                deadline=settings.temporal_command_timeout_seconds,
                owner=settings.stripe_owner,
                capture=settings.payment_capture,
                admission=Admission(
                    settings.api_max_commands_in_flight,
                    settings.api_admission_wait_seconds,
                    settings.api_retry_after_seconds,
                    kept_for_started=settings.api_places_kept_for_started_orders,
                    target_seconds=settings.api_admission_target_seconds,
                ),
            ),
            client_limits=ClientLimits(
                settings.api_max_commands_per_client,
                settings.api_max_waits_per_client,
                settings.api_retry_after_seconds,
            ),
            order_changes=order_changes,
        )
        await order_changes.start()
        try:
            with metrics.served_at(settings.api_metrics_address):
                yield
        finally:
            await order_changes.stop()
            await engine.dispose()

    app = DocumentedFastAPI(
        title="Vult Orders",
        version=release.version(),
        description="Orders and payments for the Vult shop; each order is a Temporal workflow.",
        lifespan=lifespan,
        # The HTML API explorers are for development; production serves /openapi.json only.
        docs_url=None if settings.is_production else "/docs",
        redoc_url=None if settings.is_production else "/redoc",
    )
    install_error_handlers(app)
    for router in (
        orders.router,
        webhooks.router,
        products.router,
        ops.router,
        ops_events.router,
        codec.router,
        health.router,
        shop.router,
    ):
        app.include_router(router)
    app.add_middleware(
        RoutedCORS,
        api_origins=Settings.origins(settings.frontend_origins),
        codec_origins=Settings.origins(settings.temporal_ui_origins),
    )
    app.add_middleware(GuardRails)  # the outermost: before CORS, routing and parsing
    return app


def app_factory() -> FastAPI:
    """For `uvicorn --factory api.app:app_factory`."""
    configure_logging()
    return create_app()
