"""The travel desk's tools, acting on the simulated :class:`~agentlab.world.World`.

Unlike the support shop's, these move money and seats: ``charge_card`` is a card payment that must never run
twice (idempotency keys) and is refunded when a request is rolled back; ``rebook`` takes a seat on one flight
and gives one back on another; ``cancel_booking`` keeps a fee close to departure and refuses at the gate;
``airline_status`` is the airlines' flaky external API, answered by the cached schedule when it fails.
Tools raise :class:`ToolFailed` for refusals that retrying will not fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentlab.errors import ToolFailed
from agentlab.tools.context import ToolContext
from agentlab.tools.registry import ToolRegistry
from agentlab.tools.world_tool import record_effect
from agentlab.tools.world_tool import world_tool as _world_tool

registry = ToolRegistry()

VOUCHER_CAP_USD = 250.0  # no single voucher above this, approved or not
CANCEL_FEE_USD = 60.0  # kept when a booking is cancelled within FEE_WINDOW_H of its first departure
FEE_WINDOW_H = 24.0
CLOSED_WINDOW_H = 2.0  # within this, a booking can no longer be cancelled


def world_tool(**meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a travel tool (see :func:`agentlab.tools.world_tool.world_tool`)."""
    return _world_tool(registry, **meta)


def _row(ctx: ToolContext, table: str, kind: str, row_id: str) -> dict[str, Any]:
    row = ctx.world.one(f"SELECT * FROM {table} WHERE id = ?", row_id)
    if row is None:
        raise ToolFailed(f"{kind} {row_id} not found")
    return row


def _booking(ctx: ToolContext, booking_id: str) -> dict[str, Any]:
    return _row(ctx, "bookings", "booking", booking_id)


def _flight(ctx: ToolContext, flight_id: str) -> dict[str, Any]:
    return _row(ctx, "flights", "flight", flight_id)


def _segments(ctx: ToolContext, booking_id: str) -> list[dict[str, Any]]:
    return ctx.world.all("SELECT * FROM segments WHERE booking_id = ? ORDER BY leg, id", booking_id)


def balance_due(booking: dict[str, Any]) -> float:
    """What a booking still owes (the rules' charge limit reads it too)."""
    return round(booking["fare"] - booking["paid"], 2)


def _payment(w: Any, booking_id: str, amount: float, kind: str, reason: str) -> str:
    """Record a charge or refund on a booking; its payment id."""
    payment_id = w.next_id("payments", "PAY")
    w.execute(
        "INSERT INTO payments (id, booking_id, amount, kind, reason, t) VALUES (?, ?, ?, ?, ?, ?)",
        payment_id,
        booking_id,
        amount,
        kind,
        reason,
        w.now(),
    )
    return payment_id


def _cancel_terms(booking: dict[str, Any], first_hours: float) -> tuple[bool, float]:
    """(whether the booking may be cancelled now, the fee), ``first_hours`` before its first departure: the one rule
    the preview (:func:`_cancellation`) shows and :func:`cancel_booking` applies."""
    allowed = booking["status"] == "confirmed" and first_hours >= CLOSED_WINDOW_H
    fee = round(min(CANCEL_FEE_USD, booking["paid"]), 2) if first_hours < FEE_WINDOW_H else 0.0
    return allowed, fee


# --- reads -----------------------------------------------------------------------------------------


@world_tool(permissions=["trips:read"], timeout_s=10, redact=["phone"])
def get_traveller(ctx: ToolContext, traveller_id: str) -> dict[str, Any]:
    """Get a traveller's profile, the ids of their bookings and their voucher balance."""
    row = _row(ctx, "travellers", "traveller", traveller_id)
    bookings = ctx.world.all("SELECT id FROM bookings WHERE traveller_id = ? ORDER BY id", traveller_id)
    credit = ctx.world.one("SELECT COALESCE(SUM(amount), 0) AS c FROM vouchers WHERE traveller_id = ?", traveller_id)
    return {**row, "booking_ids": [b["id"] for b in bookings], "voucher_balance": round(credit["c"], 2)}


@world_tool(permissions=["trips:read"], timeout_s=10)
def find_traveller(ctx: ToolContext, query: str) -> dict[str, Any]:
    """Find travellers whose name or email contains the query (case-insensitive)."""
    like = f"%{query.lower()}%"
    rows = ctx.world.all(
        "SELECT id, name, email, loyalty FROM travellers WHERE lower(name) LIKE ? OR lower(email) LIKE ? ORDER BY id",
        like,
        like,
    )
    return {"matches": rows}


@world_tool(permissions=["trips:read"], timeout_s=10)
def get_booking(ctx: ToolContext, booking_id: str) -> dict[str, Any]:
    """Look up a booking: traveller, status, fare, amount paid, balance due, notes and its flight segments."""
    booking = _booking(ctx, booking_id)
    segments = [{"leg": s["leg"], "flight_id": s["flight_id"]} for s in _segments(ctx, booking_id)]
    return {**booking, "balance_due": balance_due(booking), "segments": segments}


@world_tool(permissions=["trips:read"], timeout_s=10)
def get_itinerary(ctx: ToolContext, booking_id: str) -> dict[str, Any]:
    """A booking's flights in order (route, departure, hours until departure, fare) and what cancelling it
    would cost now."""
    booking = _booking(ctx, booking_id)
    legs = []
    for s in _segments(ctx, booking_id):
        f = _flight(ctx, s["flight_id"])
        legs.append(
            {
                "leg": s["leg"],
                "flight_id": f["id"],
                "airline": f["airline"],
                "route": f"{f['origin']}-{f['destination']}",
                "departure": f["departure"],
                "hours_to_departure": f["hours_to_departure"],
                "fare": f["fare"],
            }
        )
    return {"booking_id": booking_id, "legs": legs, "cancellation": _cancellation(booking, legs)}


def _cancellation(booking: dict[str, Any], legs: list[dict[str, Any]]) -> dict[str, Any]:
    """What cancelling would cost now: the terms :func:`cancel_booking` applies, shown before acting."""
    allowed, fee = _cancel_terms(booking, min((leg["hours_to_departure"] for leg in legs), default=1e9))
    return {
        "allowed": allowed,
        "fee": fee,
        "fee_window_hours": FEE_WINDOW_H,
        "closed_within_hours": CLOSED_WINDOW_H,
    }


@world_tool(permissions=["flights:read"], timeout_s=10)
def get_flight(ctx: ToolContext, flight_id: str) -> dict[str, Any]:
    """One flight: route, departure, hours until departure, fare and seats left."""
    f = _flight(ctx, flight_id)
    return {k: v for k, v in f.items() if k not in ("status", "delay_min", "scheduled_status")}


@world_tool(permissions=["flights:read"], timeout_s=10)
def search_flights(ctx: ToolContext, origin: str, destination: str) -> dict[str, Any]:
    """Flights from origin to destination (airport codes), earliest first, with fare and seats left."""
    rows = ctx.world.all(
        "SELECT id AS flight_id, airline, departure, hours_to_departure, fare, seats_left FROM flights"
        " WHERE origin = ? AND destination = ? AND status != 'cancelled' ORDER BY hours_to_departure, id",
        origin.upper(),
        destination.upper(),
    )
    return {"origin": origin.upper(), "destination": destination.upper(), "flights": rows}


@world_tool(permissions=["flights:read"], timeout_s=10)
def flight_schedule(ctx: ToolContext, flight_id: str) -> dict[str, Any]:
    """The cached published schedule's status of a flight (may be hours old)."""
    f = _flight(ctx, flight_id)
    return {"flight_id": flight_id, "status": f["scheduled_status"], "departure": f["departure"], "source": "schedule"}


@world_tool(permissions=["flights:read"], timeout_s=15, external=True, fallback="flight_schedule", cost_usd=0.001)
def airline_status(ctx: ToolContext, flight_id: str) -> dict[str, Any]:
    """Live status from the airline (on_time, delayed, cancelled; delay in minutes). External and flaky;
    falls back to flight_schedule."""
    f = _flight(ctx, flight_id)
    return {
        "flight_id": flight_id,
        "status": f["status"],
        "delay_min": f["delay_min"],
        "departure": f["departure"],
        "remarks": f["remarks"],
    }


@world_tool(permissions=["trips:read"], timeout_s=10)
def list_vouchers(ctx: ToolContext, traveller_id: str) -> dict[str, Any]:
    """A traveller's travel vouchers and their total."""
    _row(ctx, "travellers", "traveller", traveller_id)
    rows = ctx.world.all("SELECT id, amount, reason FROM vouchers WHERE traveller_id = ? ORDER BY id", traveller_id)
    return {"traveller_id": traveller_id, "vouchers": rows, "total": round(sum(r["amount"] for r in rows), 2)}


# --- money ----------------------------------------------------------------------------------------


def _refund(ctx: ToolContext, args: dict[str, Any], charge: dict[str, Any]) -> None:
    """Compensate a charge: refund it."""
    with ctx.world.transaction() as w:
        booking = _booking(ctx, charge["booking_id"])
        _payment(w, booking["id"], charge["amount"], "refund", f"compensates {charge['payment_id']}")
        w.execute(
            "UPDATE bookings SET paid = ? WHERE id = ?", round(booking["paid"] - charge["amount"], 2), booking["id"]
        )
        record_effect(
            ctx, "charge_card", {"booking_id": booking["id"], "amount": charge["amount"]}, action="compensate"
        )


@world_tool(
    permissions=["payments"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    idempotency_keys=True,
    key_fields=("booking_id", "amount"),
    rollback=_refund,
)
def charge_card(ctx: ToolContext, booking_id: str, amount: float, reason: str = "") -> dict[str, Any]:
    """Charge the card on file for a booking, up to its balance due. Not idempotent: a repeat charges again."""
    with ctx.world.transaction() as w:
        booking = _booking(ctx, booking_id)
        if booking["status"] != "confirmed":
            raise ToolFailed(f"booking {booking_id} is {booking['status']}; nothing can be charged")
        due = balance_due(booking)
        amount = round(amount, 2)
        if amount <= 0 or amount > due:
            raise ToolFailed(f"charge {amount:.2f} must be > 0 and <= the balance due {due:.2f} on {booking_id}")
        payment_id = _payment(w, booking_id, amount, "charge", reason)
        paid = round(booking["paid"] + amount, 2)
        w.execute("UPDATE bookings SET paid = ? WHERE id = ?", paid, booking_id)
        result = {
            "payment_id": payment_id,
            "booking_id": booking_id,
            "amount": amount,
            "balance_due": round(due - amount, 2),
        }
        record_effect(ctx, "charge_card", {"booking_id": booking_id, "amount": amount}, result=result)
    return result


# --- seats ----------------------------------------------------------------------------------------


def _move_back(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> None:
    """Move a rebooked segment back to its old flight, giving the seat back and restoring the fare."""
    with ctx.world.transaction() as w:
        booking = _booking(ctx, result["booking_id"])
        old, new = result["from_flight_id"], result["to_flight_id"]
        w.execute("UPDATE segments SET flight_id = ? WHERE id = ?", old, result["segment_id"])
        w.execute("UPDATE flights SET seats_left = seats_left + 1 WHERE id = ?", new)
        w.execute("UPDATE flights SET seats_left = seats_left - 1 WHERE id = ?", old)
        fare = round(booking["fare"] - result["fare_difference"], 2)
        w.execute("UPDATE bookings SET fare = ? WHERE id = ?", fare, booking["id"])
        record_effect(ctx, "rebook", {"booking_id": booking["id"], "to_flight_id": new}, action="compensate")


@world_tool(permissions=["bookings:write"], timeout_s=20, side_effects=True, rollback=_move_back)
def rebook(ctx: ToolContext, booking_id: str, from_flight_id: str, to_flight_id: str) -> dict[str, Any]:
    """Move a booking's segment from one flight to another on the same route. Takes a seat on the new flight
    and gives one back on the old; the booking's fare becomes the new flight's (any difference is due)."""
    with ctx.world.transaction() as w:
        booking = _booking(ctx, booking_id)
        if booking["status"] != "confirmed":
            raise ToolFailed(f"booking {booking_id} is {booking['status']} and cannot be rebooked")
        segment = next((s for s in _segments(ctx, booking_id) if s["flight_id"] == from_flight_id), None)
        if segment is None:
            raise ToolFailed(f"booking {booking_id} has no segment on {from_flight_id}")
        old, new = _flight(ctx, from_flight_id), _flight(ctx, to_flight_id)
        if new["id"] == old["id"]:
            raise ToolFailed(f"booking {booking_id} is already on {to_flight_id}")
        if (new["origin"], new["destination"]) != (old["origin"], old["destination"]):
            raise ToolFailed(
                f"{to_flight_id} flies {new['origin']}-{new['destination']}, not {old['origin']}-{old['destination']}"
            )
        if new["status"] == "cancelled":
            raise ToolFailed(f"{to_flight_id} is cancelled")
        if new["seats_left"] <= 0:
            raise ToolFailed(f"no seats left on {to_flight_id}")
        w.execute("UPDATE segments SET flight_id = ? WHERE id = ?", to_flight_id, segment["id"])
        w.execute("UPDATE flights SET seats_left = seats_left - 1 WHERE id = ?", to_flight_id)
        w.execute("UPDATE flights SET seats_left = seats_left + 1 WHERE id = ?", from_flight_id)
        difference = round(new["fare"] - old["fare"], 2)
        fare = round(booking["fare"] + difference, 2)
        w.execute("UPDATE bookings SET fare = ? WHERE id = ?", fare, booking_id)
        result = {
            "booking_id": booking_id,
            "segment_id": segment["id"],
            "from_flight_id": from_flight_id,
            "to_flight_id": to_flight_id,
            "fare_difference": difference,
            "balance_due": balance_due({**booking, "fare": fare}),
        }
        record_effect(ctx, "rebook", {"booking_id": booking_id, "to_flight_id": to_flight_id}, result=result)
    return result


def _reinstate(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> None:
    with ctx.world.transaction() as w:
        booking = _booking(ctx, result["booking_id"])
        for s in _segments(ctx, booking["id"]):
            w.execute("UPDATE flights SET seats_left = seats_left - 1 WHERE id = ?", s["flight_id"])
        if result["refunded"] > 0:
            _payment(w, booking["id"], result["refunded"], "charge", "booking reinstated")
        paid = round(booking["paid"] + result["refunded"], 2)
        w.execute("UPDATE bookings SET status = 'confirmed', fee = 0, paid = ? WHERE id = ?", paid, booking["id"])
        record_effect(ctx, "cancel_booking", {"booking_id": booking["id"]}, action="compensate")


@world_tool(permissions=["bookings:write"], timeout_s=20, side_effects=True, rollback=_reinstate)
def cancel_booking(ctx: ToolContext, booking_id: str, reason: str = "") -> dict[str, Any]:
    """Cancel a booking and refund what was paid, minus a 60.00 fee within 24 hours of the first departure.
    Refused within 2 hours of departure. Gives the seats back."""
    with ctx.world.transaction() as w:
        booking = _booking(ctx, booking_id)
        if booking["status"] != "confirmed":
            raise ToolFailed(f"booking {booking_id} is already {booking['status']}")
        segments = _segments(ctx, booking_id)
        first = min((_flight(ctx, s["flight_id"])["hours_to_departure"] for s in segments), default=1e9)
        allowed, fee = _cancel_terms(booking, first)
        if not allowed:  # confirmed, checked above: it departs too soon
            raise ToolFailed(f"booking {booking_id} departs in {first:g} h; it can no longer be cancelled")
        refund = round(booking["paid"] - fee, 2)
        if refund > 0:
            _payment(w, booking_id, refund, "refund", reason or "cancellation")
        for s in segments:
            w.execute("UPDATE flights SET seats_left = seats_left + 1 WHERE id = ?", s["flight_id"])
        w.execute("UPDATE bookings SET status = 'cancelled', fee = ?, paid = ? WHERE id = ?", fee, fee, booking_id)
        result = {"booking_id": booking_id, "status": "cancelled", "fee": fee, "refunded": refund}
        record_effect(ctx, "cancel_booking", {"booking_id": booking_id}, result=result)
    return result


# --- goodwill and messages --------------------------------------------------------------------------


@world_tool(
    permissions=["vouchers"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    idempotency_keys=True,
    key_fields=("traveller_id", "amount"),
)
def issue_voucher(ctx: ToolContext, traveller_id: str, amount: float, reason: str = "") -> dict[str, Any]:
    """Issue a travel voucher (goodwill credit) to a traveller, at most 250.00. Cannot be revoked."""
    with ctx.world.transaction() as w:
        _row(ctx, "travellers", "traveller", traveller_id)
        amount = round(amount, 2)
        if amount <= 0 or amount > VOUCHER_CAP_USD:
            raise ToolFailed(f"voucher amount {amount:.2f} must be > 0 and <= {VOUCHER_CAP_USD:.2f}")
        voucher_id = w.next_id("vouchers", "VC")
        w.execute(
            "INSERT INTO vouchers (id, traveller_id, amount, reason, t) VALUES (?, ?, ?, ?, ?)",
            voucher_id,
            traveller_id,
            amount,
            reason,
            w.now(),
        )
        result = {"voucher_id": voucher_id, "traveller_id": traveller_id, "amount": amount}
        record_effect(ctx, "issue_voucher", {"traveller_id": traveller_id, "amount": amount}, result=result)
    return result


@world_tool(
    permissions=["notify"],
    timeout_s=20,
    idempotent=False,
    side_effects=True,
    redact=["body"],
    key_fields=("traveller_id", "subject"),
)
def notify_traveller(ctx: ToolContext, traveller_id: str, subject: str, body: str) -> dict[str, Any]:
    """Send a traveller a message (email and app notification). Cannot be unsent."""
    with ctx.world.transaction() as w:
        _row(ctx, "travellers", "traveller", traveller_id)
        notice_id = w.next_id("notices", "NT")
        w.execute(
            "INSERT INTO notices (id, traveller_id, subject, body, t) VALUES (?, ?, ?, ?, ?)",
            notice_id,
            traveller_id,
            subject,
            body,
            w.now(),
        )
        result = {"notice_id": notice_id, "traveller_id": traveller_id}
        record_effect(ctx, "notify_traveller", {"traveller_id": traveller_id, "subject": subject}, result=result)
    return result
