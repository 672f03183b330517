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


def _shown(kind: str, value: float) -> float:
    """``value`` as its cell shows it ('pct' in points), read back: what a reader subtracts."""
    if kind == "pct":
        return float(f"{value * 100:.1f}")
    if kind == "usd":
        return float(f"{value:.4f}")
    if kind == "seconds":
        return float(f"{value:.3f}") if abs(value) < 10 else float(f"{value:.1f}")
    return float(int(value))


def fmt_delta(kind: str, first: float, other: float) -> str:
    """``other`` − ``first`` in the unit of their figure: 'pct' (points), 'usd', 'seconds' or 'count'.

    The difference of the two figures as their cells show them, so that a reader's own subtraction agrees with it:
    $0.0024 and $0.0027 differ by +$0.0003, even where the unrounded costs differ by $0.00035 (which would read
    +$0.0004). Figures that show the same read '='."""
    a, b = _shown(kind, first), _shown(kind, other)
    diff = b - a
    if diff == 0:
        return "="
    if kind == "pct":
        return f"{diff:+.1f} pts"
    if kind == "usd":
        return f"{'+' if diff > 0 else '-'}${abs(diff):,.4f}"
    if kind == "seconds":  # as precise as the coarser of the two figures
        return f"{diff:+,.3f} s" if max(abs(first), abs(other)) < 10 else f"{diff:+,.1f} s"
    return f"{int(diff):+,d}"
