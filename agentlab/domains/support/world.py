"""The support shop's world: customers, products and orders, what the agent reads, and what its actions leave."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentlab.llm.tiers import LatencyProfile
from agentlab.world.model import Environment
from agentlab.world.schema import Row, WorldSchema


class Customer(Row):
    name: str
    email: str
    phone: str = ""
    address: str = ""
    tier: Literal["standard", "gold", "platinum"] = "standard"


class Product(Row):
    name: str
    price: float = Field(ge=0)
    stock: int = Field(ge=0)


class Order(Row):
    customer_id: str
    product_id: str
    quantity: int = Field(default=1, gt=0)
    total: float = Field(ge=0)
    status: Literal["processing", "shipped", "delivered", "cancelled"]
    refunded: float = Field(default=0.0, ge=0)
    address: str = ""
    note: str = ""


class KbArticle(Row):
    title: str
    body: str


class WebPage(Row):
    url: str
    title: str
    body: str


# What the agent's actions leave behind (written by the tools, compared at the end).


class Refund(Row):
    order_id: str
    amount: float
    reason: str = ""
    t: float = 0.0


class Email(Row):
    customer_id: str
    subject: str
    body: str
    t: float = 0.0


class Ticket(Row):
    customer_id: str
    subject: str
    body: str
    priority: str
    status: str
    t: float = 0.0


class Escalation(Row):
    customer_id: str
    reason: str
    t: float = 0.0


SCHEMA = WorldSchema(
    {
        "customers": Customer,
        "products": Product,
        "orders": Order,
        "kb_articles": KbArticle,
        "web_pages": WebPage,
        "refunds": Refund,
        "emails": Email,
        "tickets": Ticket,
        "escalations": Escalation,
    },
    state_tables=("customers", "products", "orders", "refunds", "emails", "tickets", "escalations"),
    volatile=("t", "subject", "body", "reason"),
    name="SupportWorld",
)

WorldSpec = SCHEMA.spec_model

# The shop's infrastructure when a suite says nothing: web search is slow and fails 15 % of the time.
ENVIRONMENT = Environment(
    latency={"web_search": LatencyProfile(median_s=0.6, p95_s=2.5)},
    flaky={"web_search": 0.15},
)
