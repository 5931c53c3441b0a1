"""The shop's reference checkout page (static files in api/shop/) and the configuration it
reads: where Stripe.js comes from and which publishable key it uses."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from api.deps import SettingsDep
from api.errors import NotFound
from vult.process.settings import Settings
from vult.process.stripe_client import API_RELEASE

SHOP = Path(__file__).resolve().parent.parent / "shop"
# Stripe.js is versioned like the API: the release the service speaks.
REAL_STRIPE_JS = f"https://js.stripe.com/{API_RELEASE}/stripe.js"
REAL_STRIPE_API = "https://api.stripe.com"

router = APIRouter(tags=["shop"])


class ShopConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    publishable_key: str
    stripe_js_url: str
    currency: str
    tax_rate: str  # exact, as the server computes tax with it
    shipping_cost: float


def stripe_js_url(settings: Settings) -> str:
    """Real Stripe.js, or the emulator's stand-in on the local stack."""
    base = settings.stripe_api_base.rstrip("/")
    return f"{base}/js.stripe.com/{API_RELEASE}/stripe.js" if base else REAL_STRIPE_JS


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    """Only the page's own origin and Stripe.js: its script, its frames, its API."""
    js = _origin(stripe_js_url(settings))
    api = _origin(settings.stripe_api_base) if settings.stripe_api_base else REAL_STRIPE_API
    frames = js if settings.stripe_api_base else f"{js} https://hooks.stripe.com"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {js}",
            f"frame-src {frames}",
            f"connect-src 'self' {api}",
            "img-src 'self' data:",
            "style-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


@router.get("/api/config", response_model=ShopConfig)
async def shop_config(settings: SettingsDep) -> ShopConfig:
    """What a checkout page needs: the publishable key and where Stripe.js comes from."""
    return ShopConfig(
        publishable_key=settings.stripe_publishable_key,
        stripe_js_url=stripe_js_url(settings),
        currency=settings.currency,
        tax_rate=str(settings.tax_rate),
        shipping_cost=float(settings.shipping_cost),
    )


def _page(settings: Settings) -> Response:
    return FileResponse(
        SHOP / "index.html",
        media_type="text/html",
        headers={
            "Content-Security-Policy": content_security_policy(settings),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


@router.get("/shop/", include_in_schema=False)
async def checkout_page(settings: SettingsDep) -> Response:
    return _page(settings)


@router.get("/shop/orders/{order_id}", include_in_schema=False)
async def order_page(order_id: uuid.UUID, settings: SettingsDep) -> Response:
    return _page(settings)


@router.get("/shop/assets/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    kinds = {"shop.js": "text/javascript", "shop.css": "text/css"}
    if name not in kinds:
        raise NotFound("Not found")
    return FileResponse(
        SHOP / name, media_type=kinds[name], headers={"X-Content-Type-Options": "nosniff"}
    )
