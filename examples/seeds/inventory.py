"""A small inventory service for a chain of bicycle shops."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class Item:
    sku: str
    name: str
    price_cents: int
    stock: dict[str, int] = field(default_factory=dict)  # shop id -> units


class Inventory:
    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._reservations: dict[str, tuple[str, str, int, date]] = {}

    def add_item(self, sku: str, name: str, price_cents: int) -> Item:
        """Register a new product. Raises ValueError if the SKU exists."""
        if sku in self._items:
            raise ValueError(f"SKU {sku} already exists")
        item = Item(sku, name, price_cents)
        self._items[sku] = item
        return item

    def restock(self, sku: str, shop_id: str, units: int) -> int:
        """Add units of a product to one shop; returns the shop's new stock."""
        item = self._items[sku]
        item.stock[shop_id] = item.stock.get(shop_id, 0) + units
        return item.stock[shop_id]

    def find_in_stock(self, sku: str, min_units: int = 1) -> list[str]:
        """Shops holding at least min_units of the product."""
        return [s for s, n in self._items[sku].stock.items() if n >= min_units]

    def reserve(self, sku: str, shop_id: str, units: int, pickup: date) -> str:
        """Hold units for a customer until the pickup date; returns a reservation id."""
        item = self._items[sku]
        if item.stock.get(shop_id, 0) < units:
            raise ValueError("not enough stock")
        item.stock[shop_id] -= units
        rid = f"R{len(self._reservations) + 1:05d}"
        self._reservations[rid] = (sku, shop_id, units, pickup)
        return rid

    def cancel_reservation(self, reservation_id: str) -> None:
        """Release a reservation and put the units back in stock."""
        sku, shop_id, units, _ = self._reservations.pop(reservation_id)
        self.restock(sku, shop_id, units)
