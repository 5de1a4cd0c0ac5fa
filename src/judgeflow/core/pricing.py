"""What model calls cost: a price table as data, lookup rules, and a pure cost ledger.

Nothing here reads a clock, a file or the network. The runtime (`judgeflow.calls.budget.Budget`) decides whether a
call may start; this module only does the arithmetic: price lookup, cost of one call's `Usage`, running totals
per model, and a linear projection of the run's total cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from judgeflow.protocol.messages import Usage

__all__ = [
    "BATCH_DISCOUNT",
    "DEFAULT_PRICES",
    "FINE_TUNED_PREFIX",
    "TRAINING_PREFIX",
    "CostLedger",
    "ModelCost",
    "Price",
    "cost_usd",
    "parse_price_table",
    "price_for",
]

_PER_TOKEN = 1e-6

FINE_TUNED_PREFIX = "ft:"
"""Table keys ``ft:BASE`` price inference on models fine-tuned from BASE (``ft:BASE:org:suffix:id``)."""

TRAINING_PREFIX = "training:"
"""Table keys ``training:BASE`` price fine-tuning BASE: ``input_per_mtok`` per 1M *trained* tokens (tokens in
the training file times epochs), ``output_per_mtok`` 0. Look up ``training:<model>`` and charge
``Usage(input_tokens=trained_tokens)``."""

# Characters that may follow a table key for a prefix match to count: "gpt-4o" prices "gpt-4o-2024-08-06" but
# "gpt-4" must not price "gpt-4o" or "gpt-4.1", which are different (and differently priced) models.
_BOUNDARY = "-_:/@"


BATCH_DISCOUNT = 0.5
"""What a Batch API call costs as a share of the list price when the table names no batch price (OpenAI: half)."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million tokens: the list price, and the price of the same tokens through a Batch API.

    A batch price left out is `BATCH_DISCOUNT` times the list price."""

    input_per_mtok: float
    output_per_mtok: float
    batch_input_per_mtok: float | None = None
    batch_output_per_mtok: float | None = None

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok", "batch_input_per_mtok", "batch_output_per_mtok"):
            value = getattr(self, name)
            if value is None and name.startswith("batch_"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def batch(self) -> Price:
        """The batch column as a price of its own (what `cost_usd` charges a batch call with)."""
        batch_in = self.batch_input_per_mtok
        batch_out = self.batch_output_per_mtok
        return Price(
            self.input_per_mtok * BATCH_DISCOUNT if batch_in is None else batch_in,
            self.output_per_mtok * BATCH_DISCOUNT if batch_out is None else batch_out,
        )


# OpenAI prices in USD per 1M tokens as published in January 2025: input and output at the list price (standard
# tier, no cached-input discount), then the Batch API's input and output (half the list price). Prices change:
# these are defaults, overridden from config via `parse_price_table`.
DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "gpt-4": Price(30.00, 60.00, 15.00, 30.00),
        "gpt-4-turbo": Price(10.00, 30.00, 5.00, 15.00),
        "gpt-4o": Price(2.50, 10.00, 1.25, 5.00),
        "gpt-4o-2024-05-13": Price(5.00, 15.00, 2.50, 7.50),
        "gpt-4o-mini": Price(0.15, 0.60, 0.075, 0.30),
        "gpt-3.5-turbo": Price(0.50, 1.50, 0.25, 0.75),
        # Inference on fine-tuned models.
        "ft:gpt-3.5-turbo": Price(3.00, 6.00, 1.50, 3.00),
        "ft:gpt-4o-mini": Price(0.30, 1.20, 0.15, 0.60),
        "ft:gpt-4o": Price(3.75, 15.00, 1.875, 7.50),
        # Fine-tuning itself, per 1M trained tokens.
        "training:gpt-3.5-turbo": Price(8.00, 0.0),
        "training:gpt-4o-mini": Price(3.00, 0.0),
        "training:gpt-4o": Price(25.00, 0.0),
    }
)


def _longest_prefix(model: str, table: Mapping[str, Price]) -> Price | None:
    best: str | None = None
    for key in table:
        if not key or not model.startswith(key):
            continue
        at_boundary = len(model) == len(key) or key[-1] in _BOUNDARY or model[len(key)] in _BOUNDARY
        if at_boundary and (best is None or len(key) > len(best)):
            best = key
    return None if best is None else table[best]


def price_for(model: str, table: Mapping[str, Price] = DEFAULT_PRICES) -> Price | None:
    """The price of ``model`` in ``table``, or None when the table does not know it.

    Lookup order: the exact name; then, for a fine-tuned model ``ft:BASE:org:suffix:id``, the entry for
    ``ft:BASE``; then the longest key that is a prefix of the name at a boundary (``-``, ``_``, ``:``, ``/``,
    ``@``), so dated snapshots such as ``gpt-4o-2024-08-06`` take their family's price while ``gpt-4o`` is
    never priced as ``gpt-4``. A fine-tuned model never falls back to its base model's (lower) price.
    """
    exact = table.get(model)
    if exact is not None:
        return exact
    if model.startswith(FINE_TUNED_PREFIX):
        base = model[len(FINE_TUNED_PREFIX) :].split(":", 1)[0]
        model = FINE_TUNED_PREFIX + base
        exact = table.get(model)
        if exact is not None:
            return exact
    return _longest_prefix(model, table)


def cost_usd(usage: Usage, price: Price) -> float:
    """USD for one call's token usage."""
    micro_usd = usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok
    return micro_usd * _PER_TOKEN


def parse_price_table(data: Mapping[str, object]) -> dict[str, Price]:
    """Prices from config, e.g. a TOML ``[prices]`` table, to merge over `DEFAULT_PRICES`.

    Each entry is either ``{input_per_mtok = 2.5, output_per_mtok = 10.0}`` (optionally with
    ``batch_input_per_mtok`` and ``batch_output_per_mtok``) or a list ``[2.5, 10.0]`` (or ``[2.5, 10.0, 1.25,
    5.0]`` with the batch column). Raises ValueError naming the offending key.
    """
    table: dict[str, Price] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"price table key {key!r}: must be a non-empty model name")
        try:
            table[key] = _parse_price(value)
        except ValueError as exc:
            raise ValueError(f"price table entry {key!r}: {exc}") from None
    return table


def _parse_price(value: object) -> Price:
    if isinstance(value, Mapping):
        expected = {"input_per_mtok", "output_per_mtok"}
        optional = {"batch_input_per_mtok", "batch_output_per_mtok"}
        unknown = sorted(str(k) for k in value if k not in expected | optional)
        missing = sorted(expected - set(value))
        if unknown or missing:
            raise ValueError(f"expected keys input_per_mtok and output_per_mtok (missing {missing}, unknown {unknown})")
        return Price(
            value["input_per_mtok"],
            value["output_per_mtok"],
            value.get("batch_input_per_mtok"),
            value.get("batch_output_per_mtok"),
        )
    if isinstance(value, list | tuple):
        if len(value) not in (2, 4):
            raise ValueError(
                "expected [input_per_mtok, output_per_mtok] or [input, output, batch_input, batch_output] "
                f"per 1M tokens, got {len(value)} values"
            )
        return Price(*value)
    raise ValueError(f"expected a table or a pair of numbers, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ModelCost:
    """Running totals for one model; ``unpriced_calls`` (no usage or no known price) add nothing to cost."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0


class CostLedger:
    """Totals of calls, tokens and USD per model: pure, so the dashboard and tests fold calls the same way."""

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self._prices = prices
        self._models: dict[str, ModelCost] = {}

    def record(self, model: str, usage: Usage | None, *, charged_usd: float | None = None) -> float | None:
        """Add one call; returns its cost in USD (None when unknown).

        ``charged_usd`` overrides the table: a provider that reports its own charge, a training job's bill.
        """
        cost = charged_usd
        if cost is None and usage is not None:
            price = price_for(model, self._prices)
            if price is not None:
                cost = cost_usd(usage, price)
        old = self._models.get(model, ModelCost())
        self._models[model] = replace(
            old,
            calls=old.calls + 1,
            input_tokens=old.input_tokens + (usage.input_tokens if usage else 0),
            output_tokens=old.output_tokens + (usage.output_tokens if usage else 0),
            cost_usd=old.cost_usd + (cost or 0.0),
            unpriced_calls=old.unpriced_calls + (cost is None),
        )
        return cost

    @property
    def models(self) -> Mapping[str, ModelCost]:
        return MappingProxyType(self._models)

    def get(self, model: str) -> ModelCost:
        return self._models.get(model, ModelCost())

    @property
    def total_usd(self) -> float:
        return math.fsum(m.cost_usd for m in self._models.values())

    @property
    def total_calls(self) -> int:
        return sum(m.calls for m in self._models.values())

    def projected_total(self, done: int, total: int) -> float | None:
        """Cost of the whole run if the remaining items cost what the ``done`` ones did on average.

        None until an item is done (nothing to extrapolate from). Items, not calls: one item may take several
        calls (answer, judge, student), and the projection is as good as the items are alike.
        """
        if done < 0 or total < 0:
            raise ValueError(f"done and total must be >= 0, got done={done}, total={total}")
        if done == 0:
            return None
        spent = self.total_usd
        return spent if done >= total else spent / done * total
