"""Typed rows of the customer-support world, and the environment that makes it slow and flaky."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentlab.llm.tiers import LatencyProfile


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str


class Customer(_Row):
    name: str
    email: str
    phone: str = ""
    address: str = ""
    tier: Literal["standard", "gold", "platinum"] = "standard"


class Product(_Row):
    name: str
    price: float = Field(ge=0)
    stock: int = Field(ge=0)


class Order(_Row):
    customer_id: str
    product_id: str
    quantity: int = Field(default=1, gt=0)
    total: float = Field(ge=0)
    status: Literal["processing", "shipped", "delivered", "cancelled"]
    refunded: float = Field(default=0.0, ge=0)
    address: str = ""
    note: str = ""


class KbArticle(_Row):
    title: str
    body: str


class WebPage(_Row):
    url: str
    title: str
    body: str


class WorldSpec(BaseModel):
    """The initial content of a world (a ``fixtures/worlds/*.yaml`` file)."""

    model_config = ConfigDict(extra="forbid")

    customers: list[Customer] = []
    products: list[Product] = []
    orders: list[Order] = []
    kb_articles: list[KbArticle] = []
    web_pages: list[WebPage] = []


ROW_MODELS: dict[str, type[_Row]] = {
    "customers": Customer,
    "products": Product,
    "orders": Order,
    "kb_articles": KbArticle,
    "web_pages": WebPage,
}


class Environment(BaseModel):
    """How the world behaves as infrastructure: tool latency and intrinsic flakiness."""

    model_config = ConfigDict(extra="forbid")

    default_latency: LatencyProfile = LatencyProfile(median_s=0.08, p95_s=0.3)
    latency: dict[str, LatencyProfile] = {"web_search": LatencyProfile(median_s=0.6, p95_s=2.5)}
    flaky: dict[str, float] = Field(default_factory=lambda: {"web_search": 0.15})
