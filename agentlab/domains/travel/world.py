"""The travel desk's world: travellers, their bookings (itineraries of flight segments), the flights, the card
ledger and vouchers.

Flights on one route sit next to each other by id (``FL-101``, ``FL-102``, ``FL-103`` all fly LIS-LHR, most with
seats): a call that names the neighbour of the right flight is valid, visible in the search results, and wrong.
That is on purpose: it is the mistake a hurried agent makes, and only the end state shows it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentlab.llm.tiers import LatencyProfile
from agentlab.world.model import Environment
from agentlab.world.schema import Row, WorldSchema


class Traveller(Row):
    name: str
    email: str
    phone: str = ""
    loyalty: Literal["none", "silver", "gold"] = "none"


class Flight(Row):
    airline: str
    origin: str
    destination: str
    departure: str  # local departure time, as shown to the traveller
    hours_to_departure: float  # from now; the cancellation rules read it
    seats_left: int = Field(ge=0)
    fare: float = Field(ge=0)
    status: Literal["on_time", "delayed", "cancelled"] = "on_time"  # what the airline says now (airline_status)
    delay_min: int = 0
    scheduled_status: Literal["on_time", "delayed", "cancelled"] = "on_time"  # the cached schedule's last word
    remarks: str = ""


class Booking(Row):
    traveller_id: str
    fare: float = Field(ge=0)  # what the itinerary costs now
    paid: float = Field(default=0.0, ge=0)  # charged minus refunded
    status: Literal["confirmed", "cancelled"] = "confirmed"
    fee: float = Field(default=0.0, ge=0)  # cancellation fee kept
    note: str = ""


class Segment(Row):
    booking_id: str
    flight_id: str
    leg: int = 1


# What the agent's actions leave behind (written by the tools, compared at the end).


class Payment(Row):
    booking_id: str
    amount: float
    kind: Literal["charge", "refund"]
    reason: str = ""
    t: float = 0.0


class Voucher(Row):
    traveller_id: str
    amount: float
    reason: str = ""
    t: float = 0.0


class Notice(Row):
    traveller_id: str
    subject: str
    body: str
    t: float = 0.0


SCHEMA = WorldSchema(
    {
        "travellers": Traveller,
        "flights": Flight,
        "bookings": Booking,
        "segments": Segment,
        "payments": Payment,
        "vouchers": Voucher,
        "notices": Notice,
    },
    volatile=("t", "subject", "body", "reason"),
    name="TravelWorld",
)

WorldSpec = SCHEMA.spec_model

# The desk's infrastructure when a suite says nothing: the airlines' status API is slow and fails 20 % of the
# time (its fallback, the cached schedule, answers instead); the card processor is slower than a lookup.
ENVIRONMENT = Environment(
    latency={
        "airline_status": LatencyProfile(median_s=0.7, p95_s=3.0),
        "charge_card": LatencyProfile(median_s=0.4, p95_s=1.5),
    },
    flaky={"airline_status": 0.2},
)
