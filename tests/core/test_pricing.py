"""Tests for judgeflow.core.pricing: the price table, lookup rules, cost arithmetic, config parsing and the ledger."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.pricing import (
    DEFAULT_PRICES,
    CostLedger,
    ModelCost,
    Price,
    cost_usd,
    parse_price_table,
    price_for,
)
from judgeflow.protocol.messages import Usage

# --------------------------------------------------------------------------------------------------------------
# price_for


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-4", "gpt-4"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-turbo", "gpt-4-turbo"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # exact beats prefix
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # longest prefix wins
        ("gpt-3.5-turbo", "gpt-3.5-turbo"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("ft:gpt-3.5-turbo", "ft:gpt-3.5-turbo"),
        ("ft:gpt-3.5-turbo-0125:acme::8xYz", "ft:gpt-3.5-turbo"),
        ("ft:gpt-3.5-turbo-1106:acme:judge:9AbC", "ft:gpt-3.5-turbo"),
        ("ft:gpt-4o-mini-2024-07-18:acme:student:AbC123", "ft:gpt-4o-mini"),
        ("ft:gpt-4o-2024-08-06:acme::AbC123", "ft:gpt-4o"),
        ("training:gpt-3.5-turbo", "training:gpt-3.5-turbo"),
        ("training:gpt-4o-mini-2024-07-18", "training:gpt-4o-mini"),
    ],
)
def test_price_for_known_models(model: str, key: str) -> None:
    assert price_for(model) == DEFAULT_PRICES[key]
    assert price_for(model, DEFAULT_PRICES) is DEFAULT_PRICES[key]


@pytest.mark.parametrize(
    "model",
    [
        "",
        "llama-3-8b",
        "gpt-4.1",  # "gpt-4" is not a prefix at a boundary
        "gpt-4.5-preview",
        "gpt-4x",
        "gpt",
        "ft:llama-3:acme::x",  # an unknown fine-tune has no price...
        "ft:gpt-4-0613:acme::x",  # ...and never takes its base model's (cheaper) price
        "training:gpt-4",
        "GPT-4O",  # names are case-sensitive, as the APIs are
    ],
)
def test_price_for_unknown_models(model: str) -> None:
    assert price_for(model) is None


def test_price_for_never_matches_gpt4_to_gpt4o() -> None:
    table = {"gpt-4": Price(30, 60)}
    assert price_for("gpt-4o", table) is None
    assert price_for("gpt-4o-2024-08-06", table) is None
    assert price_for("gpt-4-32k", table) == Price(30, 60)


def test_price_for_custom_table() -> None:
    table = {
        "meta-llama/": Price(0.1, 0.1),  # a key ending in a separator matches anything under it
        "meta-llama/Llama-3-70B": Price(0.9, 0.9),
        "ft:gpt-4o-mini:acme::special": Price(9, 9),
        "ft:gpt-4o-mini": Price(0.3, 1.2),
    }
    assert price_for("meta-llama/Llama-3-8B-Instruct", table) == Price(0.1, 0.1)
    assert price_for("meta-llama/Llama-3-70B-Instruct", table) == Price(0.9, 0.9)
    assert price_for("ft:gpt-4o-mini:acme::special", table) == Price(9, 9)
    assert price_for("ft:gpt-4o-mini:acme::other", table) == Price(0.3, 1.2)
    assert price_for("gpt-4o", table) is None


def test_default_prices_cover_the_documented_models_and_are_immutable() -> None:
    for key in (
        "gpt-4",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-3.5-turbo",
        "ft:gpt-3.5-turbo",
        "ft:gpt-4o-mini",
        "training:gpt-3.5-turbo",
        "training:gpt-4o-mini",
    ):
        assert key in DEFAULT_PRICES
        assert price_for(key) is DEFAULT_PRICES[key]
    # Fine-tuned inference costs more than the base model; training is billed on input only.
    assert DEFAULT_PRICES["ft:gpt-4o-mini"].input_per_mtok > DEFAULT_PRICES["gpt-4o-mini"].input_per_mtok
    assert DEFAULT_PRICES["training:gpt-4o-mini"].output_per_mtok == 0.0
    with pytest.raises(TypeError):
        DEFAULT_PRICES["gpt-4"] = Price(0, 0)  # type: ignore[index]


# --------------------------------------------------------------------------------------------------------------
# Price and cost_usd


@pytest.mark.parametrize(
    ("usage", "price", "expected"),
    [
        (Usage(1_000_000, 0), Price(2.5, 10.0), 2.5),
        (Usage(0, 1_000_000), Price(2.5, 10.0), 10.0),
        (Usage(1000, 500), Price(0.15, 0.60), 0.00045),
        (Usage(0, 0), Price(30, 60), 0.0),
        (Usage(123, 456), Price(0, 0), 0.0),
        # Training: trained tokens go in as input.
        (Usage(input_tokens=2_000_000), DEFAULT_PRICES["training:gpt-4o-mini"], 6.0),
    ],
)
def test_cost_usd_table(usage: Usage, price: Price, expected: float) -> None:
    assert cost_usd(usage, price) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1.0, 0.0), "input_per_mtok"),
        ((0.0, -0.01), "output_per_mtok"),
        ((math.nan, 0.0), "input_per_mtok"),
        ((0.0, math.inf), "output_per_mtok"),
        ((True, 1.0), "input_per_mtok"),
        (("1.0", 1.0), "input_per_mtok"),
    ],
)
def test_price_rejects_bad_values(args: tuple[object, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Price(*args)  # type: ignore[arg-type]


_TOKENS = st.integers(0, 10**9)
_PRICES = st.builds(Price, st.floats(0, 1000), st.floats(0, 1000))


@settings(max_examples=200, deadline=None)
@given(a=st.builds(Usage, _TOKENS, _TOKENS), b=st.builds(Usage, _TOKENS, _TOKENS), price=_PRICES)
def test_cost_is_non_negative_and_additive(a: Usage, b: Usage, price: Price) -> None:
    both = Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens)
    assert cost_usd(a, price) >= 0.0
    assert cost_usd(both, price) == pytest.approx(cost_usd(a, price) + cost_usd(b, price), rel=1e-9, abs=1e-12)


def test_the_batch_column_is_half_the_list_price_unless_the_table_says_otherwise() -> None:
    for model, price in DEFAULT_PRICES.items():
        if model.startswith("training:"):
            continue
        assert price.batch() == Price(price.input_per_mtok / 2, price.output_per_mtok / 2), model
    assert Price(2.0, 8.0).batch() == Price(1.0, 4.0)  # no batch column: half the list price
    assert Price(2.0, 8.0, 1.5, 7.0).batch() == Price(1.5, 7.0)
    usage = Usage(1_000, 200)
    gpt4o = DEFAULT_PRICES["gpt-4o"]
    assert cost_usd(usage, gpt4o.batch()) == pytest.approx(cost_usd(usage, gpt4o) / 2)
    with pytest.raises(ValueError, match="batch_input_per_mtok"):
        Price(1.0, 1.0, -1.0)


# --------------------------------------------------------------------------------------------------------------
# parse_price_table


def test_parse_price_table_accepts_tables_and_pairs() -> None:
    table = parse_price_table(
        {
            "gpt-4o": {"input_per_mtok": 2, "output_per_mtok": 8.0},
            "my-model": [0.1, 0.2],
            "other": (0, 0),
        }
    )
    assert table == {"gpt-4o": Price(2, 8.0), "my-model": Price(0.1, 0.2), "other": Price(0, 0)}
    batch = parse_price_table(
        {"a": [2, 8, 0.5, 2], "b": {"input_per_mtok": 2, "output_per_mtok": 8, "batch_output_per_mtok": 3}}
    )
    assert batch["a"].batch() == Price(0.5, 2)
    assert batch["b"].batch() == Price(1.0, 3)
    merged = {**DEFAULT_PRICES, **table}
    assert price_for("gpt-4o-2024-08-06", merged) == Price(2, 8.0)
    assert parse_price_table({}) == {}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"gpt-x": {"input_per_mtok": -1, "output_per_mtok": 1}}, "'gpt-x'.*input_per_mtok"),
        ({"gpt-x": {"input_per_mtok": 1}}, "'gpt-x'.*missing \\['output_per_mtok'\\]"),
        ({"gpt-x": {"input_per_mtok": 1, "output_per_mtok": 1, "cached": 0.5}}, "'gpt-x'.*unknown \\['cached'\\]"),
        ({"gpt-x": {"input_per_mtok": "cheap", "output_per_mtok": 1}}, "'gpt-x'.*must be a number"),
        ({"gpt-x": [1.0]}, "'gpt-x'.*got 1 values"),
        ({"gpt-x": [1.0, 2.0, 3.0]}, "'gpt-x'.*got 3 values"),
        ({"gpt-x": 2.5}, "'gpt-x'.*got float"),
        ({"gpt-x": None}, "'gpt-x'.*got NoneType"),
        ({"gpt-x": [True, 1.0]}, "'gpt-x'.*input_per_mtok"),
        ({"": [1.0, 1.0]}, "non-empty"),
        ({"ok": [1, 1], "bad": [1, math.nan]}, "'bad'.*output_per_mtok"),
    ],
)
def test_parse_price_table_names_the_bad_key(data: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_price_table(data)


# --------------------------------------------------------------------------------------------------------------
# CostLedger


def test_ledger_accumulates_per_model() -> None:
    ledger = CostLedger()
    assert ledger.record("gpt-4o-mini-2024-07-18", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert ledger.record("gpt-4o-mini-2024-07-18", Usage(1_000_000, 0)) == pytest.approx(0.15)
    assert ledger.record("gpt-4o", Usage(0, 100_000)) == pytest.approx(1.0)
    mini = ledger.get("gpt-4o-mini-2024-07-18")
    assert (mini.calls, mini.input_tokens, mini.output_tokens, mini.unpriced_calls) == (2, 2_000_000, 1_000_000, 0)
    assert mini.cost_usd == pytest.approx(0.9)
    assert ledger.total_usd == pytest.approx(1.9)
    assert ledger.total_calls == 3
    assert set(ledger.models) == {"gpt-4o-mini-2024-07-18", "gpt-4o"}
    assert ledger.get("never-called") == ModelCost()


def test_ledger_counts_unpriced_calls_and_honours_charged_cost() -> None:
    ledger = CostLedger()
    assert ledger.record("local-student", None) is None
    assert ledger.record("mystery-model", Usage(10, 10)) is None
    assert ledger.record("mystery-model", Usage(10, 10), charged_usd=0.5) == 0.5
    assert ledger.record("gpt-4", None, charged_usd=0.25) == 0.25
    mystery = ledger.get("mystery-model")
    assert (mystery.calls, mystery.unpriced_calls, mystery.input_tokens) == (2, 1, 20)
    assert ledger.get("local-student") == ModelCost(calls=1, unpriced_calls=1)
    assert ledger.total_usd == pytest.approx(0.75)


def test_ledger_uses_its_own_price_table() -> None:
    ledger = CostLedger({"house-model": Price(1.0, 2.0)})
    assert ledger.record("house-model-v2", Usage(1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert ledger.record("gpt-4o", Usage(1_000_000, 0)) is None


def test_projected_total() -> None:
    ledger = CostLedger()
    assert ledger.projected_total(0, 100) is None
    ledger.record("x", None, charged_usd=2.0)
    assert ledger.projected_total(10, 100) == pytest.approx(20.0)
    assert ledger.projected_total(100, 100) == pytest.approx(2.0)
    assert ledger.projected_total(120, 100) == pytest.approx(2.0)  # past the estimate: what was spent
    assert ledger.projected_total(5, 0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="done"):
        ledger.projected_total(-1, 10)


@settings(max_examples=100, deadline=None)
@given(
    calls=st.lists(st.tuples(st.sampled_from(["gpt-4o", "gpt-4o-mini", "unknown"]), _TOKENS, _TOKENS), max_size=30),
)
def test_ledger_total_is_the_sum_of_call_costs(calls: list[tuple[str, int, int]]) -> None:
    ledger = CostLedger()
    costs = [ledger.record(model, Usage(i, o)) for model, i, o in calls]
    assert ledger.total_usd == pytest.approx(math.fsum(c for c in costs if c is not None))
    assert ledger.total_calls == len(calls)
    assert sum(m.unpriced_calls for m in ledger.models.values()) == costs.count(None)
