"""The travel desk's rules beyond permissions: checks of a call's arguments against the world."""

from __future__ import annotations

from typing import Any

from agentlab.components.policy import Constraint, Policy
from agentlab.domains.travel.tools import VOUCHER_CAP_USD, balance_due


def _booking(env: Any, booking_id: str) -> dict[str, Any] | None:
    return env.one("SELECT * FROM bookings WHERE id = ?", booking_id) if env is not None else None


def charge_within_due(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    """A card is never charged more than the booking still owes."""
    booking = _booking(env, args.get("booking_id", ""))
    if booking is not None and args.get("amount", 0) > balance_due(booking):
        return "deny", f"charge {args['amount']} exceeds the balance due on {booking['id']}"
    return None


def voucher_cap(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    if args.get("amount", 0) > VOUCHER_CAP_USD:
        return "deny", f"voucher {args['amount']} is above the {VOUCHER_CAP_USD:g} cap"
    return None


def voucher_approval_limit(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    """Goodwill above the policy's approval limit needs a person's approval (ASK)."""
    limit = policy.approval_limit_usd
    if limit is not None and args.get("amount", 0) > limit:
        return "ask", f"voucher {args['amount']} is above the {limit:g} approval limit"
    return None


def own_trips_only(user: Any, tool: str, args: dict[str, Any], env: Any, policy: Policy):
    """A traveller acting for themselves may touch only their own bookings and profile."""
    if user.role != "traveller":
        return None
    if "booking_id" in args:
        booking = _booking(env, args["booking_id"])
        if booking is not None and booking["traveller_id"] != user.id:
            return "deny", f"{args['booking_id']} is not {user.id}'s booking"
    if "traveller_id" in args and args["traveller_id"] != user.id:
        return "deny", f"{user.id} may only act on their own profile"
    return None


CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "charge_card": (charge_within_due, own_trips_only),
    "issue_voucher": (voucher_cap, voucher_approval_limit, own_trips_only),
    "rebook": (own_trips_only,),
    "cancel_booking": (own_trips_only,),
    "get_booking": (own_trips_only,),
    "get_itinerary": (own_trips_only,),
}

# Roles the constraints above give a meaning of their own, whether or not a suite declares them.
CONSTRAINT_ROLES = frozenset({"traveller"})

# The resource a call acts on: the first id it names.
RESOURCE_KEYS = (("booking_id", "booking"), ("traveller_id", "traveller"), ("flight_id", "flight"))
