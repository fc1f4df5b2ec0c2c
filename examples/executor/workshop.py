"""Workshop stores: convert lengths and weights, look parts up and quote orders.

An executor module for the tool_use skill (docs/trajectories.md, "Your own executor"): each
public function is an API, its docstring's first paragraph the API's description, its type
hints the parameters' types and its ``Args:`` section their descriptions. The functions are
pure: the stock below is constant data, so every episode sees the same shop.

Run it:
    genteach generate --taxonomy examples/executor/taxonomy.yaml --skills tool_use \
        --seeds examples/seeds --out runs/workshop --set executor=examples/executor/workshop.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LengthUnit = Literal["mm", "cm", "m", "km", "in", "ft"]
WeightUnit = Literal["g", "kg", "oz", "lb"]
Category = Literal["fasteners", "timber", "tools"]

_METRES = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048}
_GRAMS = {"g": 1.0, "kg": 1000.0, "oz": 28.349523125, "lb": 453.59237}


@dataclass(frozen=True)
class Part:
    """One part the shop stocks."""

    sku: str
    name: str
    category: Category
    stock: int
    unit_price_eur: float
    unit_weight_g: float


@dataclass(frozen=True)
class Quote:
    """What an order would cost and weigh, and when it would arrive."""

    sku: str
    quantity: int
    total_eur: float
    total_weight_kg: float
    delivery_days: int


_STOCK = (
    Part("FX-100", "wood screw 4x40 mm (box of 200)", "fasteners", 140, 6.90, 820.0),
    Part("FX-220", "hex bolt M8x60 (pack of 25)", "fasteners", 36, 9.40, 910.0),
    Part("FX-310", "wall plug 8 mm (pack of 100)", "fasteners", 0, 3.20, 180.0),
    Part("TB-045", "pine batten 45x45 mm, 2.4 m", "timber", 62, 7.80, 2900.0),
    Part("TB-120", "oak board 20x120 mm, 2 m", "timber", 9, 38.50, 3600.0),
    Part("TL-007", "cordless drill 18 V", "tools", 4, 129.00, 1650.0),
    Part("TL-015", "spirit level 60 cm", "tools", 17, 19.90, 540.0),
)


def convert_length(value: float, from_unit: LengthUnit, to_unit: LengthUnit) -> float:
    """Convert a length from one unit to another.

    Args:
        value: the length in ``from_unit``.
        from_unit: the unit of ``value``.
        to_unit: the unit of the result.

    Returns:
        The length in ``to_unit``, rounded to 4 decimals.
    """
    return round(value * _METRES[from_unit] / _METRES[to_unit], 4)


def convert_weight(value: float, from_unit: WeightUnit, to_unit: WeightUnit) -> float:
    """Convert a weight from one unit to another.

    Args:
        value: the weight in ``from_unit``.
        from_unit: the unit of ``value``.
        to_unit: the unit of the result.

    Returns:
        The weight in ``to_unit``, rounded to 4 decimals.
    """
    return round(value * _GRAMS[from_unit] / _GRAMS[to_unit], 4)


def find_parts(
    query: str, category: Category | None = None, in_stock_only: bool = False
) -> list[Part]:
    """Search the shop's parts (screws, bolts, wall plugs, pine battens, oak boards, a
    cordless drill, a spirit level) by words of their name.

    Args:
        query: words that must all appear in the part's name (case does not matter).
        category: only parts of this category.
        in_stock_only: leave out parts with no stock.

    Returns:
        The matching parts (sku, name, category, stock, unit_price_eur, unit_weight_g).
    """
    words = query.lower().split()
    return [
        p
        for p in _STOCK
        if all(w in p.name.lower() for w in words)
        and (category is None or p.category == category)
        and (p.stock > 0 or not in_stock_only)
    ]


def get_part(sku: str) -> Part:
    """Look one part up by its SKU.

    Args:
        sku: the part's stock-keeping unit, such as "FX-100".

    Returns:
        The part (sku, name, category, stock, unit_price_eur, unit_weight_g).

    Raises:
        KeyError: no part has this SKU.
    """
    for part in _STOCK:
        if part.sku == sku.strip().upper():
            return part
    raise KeyError(f"no part with SKU {sku}")


def quote_order(sku: str, quantity: int, express: bool = False) -> Quote:
    """Quote an order of one part: total price, total weight and delivery time.

    Standard delivery takes 3 working days and is free; express takes 1 day and adds
    9.50 EUR. Nothing is ordered.

    Args:
        sku: the part's SKU.
        quantity: how many units (at least 1, at most the stock).
        express: next-day delivery.

    Returns:
        sku, quantity, total_eur, total_weight_kg and delivery_days.

    Raises:
        ValueError: the quantity is under 1 or over the stock.
    """
    part = get_part(sku)
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    if quantity > part.stock:
        raise ValueError(f"only {part.stock} of {part.sku} in stock")
    total = part.unit_price_eur * quantity + (9.50 if express else 0.0)
    return Quote(
        sku=part.sku,
        quantity=quantity,
        total_eur=round(total, 2),
        total_weight_kg=round(part.unit_weight_g * quantity / 1000, 3),
        delivery_days=1 if express else 3,
    )


__all__ = [
    "Part",
    "Quote",
    "convert_length",
    "convert_weight",
    "find_parts",
    "get_part",
    "quote_order",
]
