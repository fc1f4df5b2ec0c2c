"""What a run costs: a configurable price table (US dollars per million tokens).

The built-in prices are list prices for standard (non-batch) calls as genteach knows them;
providers change them, so check yours and override them with a YAML file::

    # prices.yaml: dollars per 1M tokens
    gpt-4o: {input: 2.50, output: 10.00}
    my-vllm-model: {input: 0, output: 0}

A model is looked up by exact name, then by the longest known prefix (so dated snapshots
such as ``gpt-4o-2024-08-06`` find ``gpt-4o``), with any ``provider/`` prefix removed.
The embedded backend's models (``local:...``) cost nothing.
An unknown model has no price: costs are then reported as unknown, never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from genteach.models.base import Usage


@dataclass(frozen=True)
class Price:
    """Dollars per million input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1e6


#: Built-in list prices (USD per 1M tokens, standard tier). Override with a prices file.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o4-mini": Price(1.10, 4.40),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
}

#: Models run in this process (the embedded backend names them ``local:<model>``) cost
#: nothing per token.
LOCAL_PREFIX = "local:"


class PriceTable:
    """Prices by model name.

    Args:
        prices: name -> :class:`Price`; default :data:`DEFAULT_PRICES`.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def load(cls, path: str | Path | None = None, *, defaults: bool = True) -> PriceTable:
        """The built-in table (if ``defaults``) updated with a YAML prices file."""
        table = cls(DEFAULT_PRICES if defaults else {})
        if path is None:
            return table
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"prices file {p} does not exist")
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a mapping of model name -> {{input, output}}")
        for name, entry in data.items():
            if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
                raise ValueError(
                    f"{p}: {name}: expected {{input: <$ per 1M>, output: <$ per 1M>}}, "
                    f"got {entry!r}"
                )
            try:
                table.prices[str(name)] = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{p}: {name}: prices must be numbers ({exc})") from exc
        return table

    def set(self, model: str, price: Price) -> None:
        self.prices[model] = price

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``, or ``None`` if it is not known."""
        name = model.strip()
        if name in self.prices:
            return self.prices[name]
        if name.startswith(LOCAL_PREFIX):
            return Price(0.0, 0.0)
            return self.prices[name]
        name = name.rsplit("/", 1)[-1].lower()
        if name in self.prices:
            return self.prices[name]
        matches = [k for k in self.prices if name.startswith(k.lower() + "-")]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """Dollars for ``usage`` on ``model``; ``None`` when its price is unknown."""
        price = self.lookup(model)
        return None if price is None else price.cost(usage)


def format_cost(cost: float | None) -> str:
    """``$1.23`` (or ``$0.0012`` for small sums), ``unknown`` for ``None``."""
    if cost is None:
        return "unknown"
    return f"${cost:,.2f}" if cost >= 1 or cost == 0 else f"${cost:.4f}"


__all__ = ["DEFAULT_PRICES", "LOCAL_PREFIX", "Price", "PriceTable", "format_cost"]
