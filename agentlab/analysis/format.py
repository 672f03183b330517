"""One way to write each kind of number in the report and the viewers: percentages, USD, seconds, counts.

Every table cell goes through here, so a figure reads the same wherever it appears (and a Δ in the same unit).
"""

from __future__ import annotations

import math
from typing import Any


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A share (0..1) as a percentage: 0.9545 -> '95.5 %'."""
    return "—" if _missing(value) else f"{value * 100:.{digits}f} %"


def fmt_usd(value: float | None) -> str:
    """Dollars with four decimals (model calls cost fractions of a cent): 0.100581 -> '$0.1006'."""
    if _missing(value):
        return "—"
    return f"-${-value:,.4f}" if value < 0 else f"${value:,.4f}"


def fmt_seconds(value: float | None) -> str:
    """Simulated seconds: '0.412 s' under 10 s, '117.3 s' above."""
    if _missing(value):
        return "—"
    return f"{value:.3f} s" if abs(value) < 10 else f"{value:,.1f} s"


def fmt_count(value: float | None) -> str:
    return "—" if _missing(value) else f"{int(value):,d}"


def fmt_delta(kind: str, diff: float) -> str:
    """A difference in the unit of its figure: 'pct' (points), 'usd', 'seconds' or 'count'."""
    if diff == 0:
        return "="
    if kind == "pct":
        return f"{diff * 100:+.1f} pts"
    if kind == "usd":
        return f"{'+' if diff > 0 else '-'}${abs(diff):,.4f}"
    if kind == "seconds":
        return f"{diff:+,.3f} s" if abs(diff) < 10 else f"{diff:+,.1f} s"
    return f"{int(diff):+,d}"
