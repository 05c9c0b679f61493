"""The strategy stage's configuration models, light to import (pydantic and stdlib only).

:class:`BacktestConfig` (costs / sizing / price model of a backtest), :class:`ObjectiveConfig`
(fold results -> the search objective) and :class:`RankingConfig` (gates, score, diversity)
live here so that :mod:`aio_ray.config` composes them without loading numba or polars; the
modules that use them (:mod:`~aio_ray.strategies.engine`, :mod:`~aio_ray.strategies.evaluate`,
:mod:`~aio_ray.strategies.ranking`) re-export them under their old names.

Costs are on by default, at levels typical of a EUR/USD ECN account: commission 3.5 USD per
lot (100,000 units) per side, 1 point (0.1 pip) of slippage on market and stop fills, and swap
at the 17:00 New York rollover, -7.0 USD per lot held long and +2.0 held short, tripled for the
Wednesday close. A comparison with an engine that models fewer costs sets the others to 0.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.errors import BacktestError, ConfigError
from aio_ray.frozen import Frozen

__all__ = [
    "DAY_MS",
    "DEFAULT_COMMISSION_PER_LOT",
    "BacktestConfig",
    "BacktestConfigError",
    "BacktestError",
    "ObjectiveConfig",
    "RankingConfig",
    "SearchConfig",
]

DAY_MS = 86_400_000
DEFAULT_COMMISSION_PER_LOT = 3.5
"""USD per lot per side: the ``commission`` default for ``commission_type="per_lot"``."""


class BacktestConfigError(BacktestError, ConfigError):
    """An invalid :class:`BacktestConfig` field (also a ``ConfigError``, so a configuration
    file that embeds the backtest section reports it like any other setting)."""


class BacktestConfig(BaseModel):
    """Costs, sizing and price model of a backtest (frozen; unknown fields are errors).

    The default costs are those of a EUR/USD ECN account (see the module docstring); set a
    cost to 0 to leave it out. Invalid values raise :class:`BacktestConfigError` (a :class:`BacktestError` and a
    ``ConfigError``) naming the field and the accepted values.
    ``aio_ray.config.config_id(cfg)`` gives a stable id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    price_model: Literal["bidask", "single"] = Field(
        "bidask",
        description="bidask: buy at the ask, sell at the bid (needs bid/ask bars; for "
        "ranking); single: one price series, the signal bars' OHLC (Pine's view)",
    )
    initial_capital: float = Field(10_000.0, gt=0, description="account currency (USD)")
    commission_type: Literal["per_lot", "percent", "cash_per_order"] = Field(
        "per_lot",
        description="per_lot: account currency per 100,000 units per side; percent: percent "
        "of the fill's value; cash_per_order: account currency per fill",
    )
    commission: float = Field(
        DEFAULT_COMMISSION_PER_LOT,
        ge=0,
        allow_inf_nan=False,
        description="rate per side (entry and exit each pay it), in the unit of "
        "commission_type; default 3.5 (USD per lot per side, an ECN rate) for per_lot, 0 for "
        "percent and cash_per_order",
    )
    slippage_points: float = Field(
        1.0,
        ge=0,
        allow_inf_nan=False,
        description="points (ticks of point_size; EURUSD 1 point = 0.1 pip) against market "
        "and stop fills; limit (target) fills and the end-of-data close get none",
    )
    swap_long: float = Field(
        -7.0,
        allow_inf_nan=False,
        description="account currency per lot (100,000 units) held long across one 17:00 "
        "New York rollover (Wednesday's counts 3 times); negative = charged, positive = paid",
    )
    swap_short: float = Field(
        2.0,
        allow_inf_nan=False,
        description="account currency per lot (100,000 units) held short across one 17:00 "
        "New York rollover (Wednesday's counts 3 times); negative = charged, positive = paid",
    )
    point_size: float = Field(1e-5, gt=0, description="price of one point / tick (EURUSD 1e-5)")
    pip_size: float = Field(1e-4, gt=0, description="price of one pip (EURUSD 1e-4)")
    sizing: Literal["fixed", "risk"] = Field(
        "fixed", description="fixed: `units` per trade; risk: risk_fraction of equity vs stop"
    )
    units: float = Field(100_000.0, gt=0, description="units per trade (100,000 = 1 lot)")
    risk_fraction: float = Field(0.01, gt=0, le=1, description="fraction of equity at risk")
    lot_step: float = Field(1_000.0, gt=0, description="risk-sized units round down to this")
    bars_per_year: float | None = Field(
        None, gt=0, description="annualization; None: 260 x bars per day of the bars' spacing"
    )
    intrabar: Literal["stop_first", "tradingview"] = Field(
        "stop_first",
        description="a bar touching both the stop and the target: stop_first takes the stop "
        "(conservative, for ranking); tradingview follows TradingView's broker emulator (the "
        "path goes first to the extreme nearer the open; see fills.py)",
    )
    level_tick: float | None = Field(
        None,
        gt=0,
        description="price units; when set, stop and target levels are rounded to this tick "
        "away from the signal close, as Pine orders are (None: raw levels)",
    )

    @model_validator(mode="before")
    @classmethod
    def _commission_default_in_its_unit(cls, data: Any) -> Any:
        # 3.5 is a per-lot figure: another commission type given without a rate gets 0
        if (
            isinstance(data, dict)
            and "commission" not in data
            and data.get("commission_type", "per_lot") != "per_lot"
        ):
            return {**data, "commission": 0.0}
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _raise_backtest_error(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"BacktestConfig.{'.'.join(str(p) for p in e['loc']) or '?'}: {e['msg']}"
                + (f" (got {e['input']!r})" if e["type"] != "missing" else "")
                for e in exc.errors()
            )
            raise BacktestConfigError(problems) from None


class ObjectiveConfig(BaseModel):
    """How fold results become the scalar the search maximizes (frozen; unknown fields are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_trades: int = Field(3, ge=0, description="OOS trades a fold needs to count in full")
    min_is_trades: int = Field(
        20,
        ge=0,
        description="trades an in-sample (selection) window needs to count in full: "
        "parameters are chosen on a window only where they traded enough for its Sharpe to mean "
        "something",
    )
    few_trades_penalty: float = Field(
        1.0,
        ge=0,
        description="annualized Sharpe taken off a fold with fewer than min_trades trades",
    )
    dispersion_penalty: float = Field(
        0.5, ge=0, description="weight of the std of the fold values subtracted from their mean"
    )
    sharpe_cap: float = Field(10.0, gt=0, description="fold Sharpe ratios are clipped to +/- this")
    period_ms: int = Field(DAY_MS, gt=0, description="period of the returns behind the DSR, ms")


class RankingConfig(BaseModel):
    """How candidates are gated, scored and spread out (frozen; unknown fields are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_trades: int = Field(
        default=30,
        ge=0,
        description="gate: out-of-sample trades, forced end-of-window exits not counted",
    )
    min_dsr: float = Field(
        default=0.95,
        ge=0.0,
        le=1.0,
        description="gate: Deflated Sharpe Ratio (probability "
        "that the edge is not selection luck, given the effective number of trials)",
    )
    min_sharpe: float = Field(
        default=0.0, description="gate: the out-of-sample record's Sharpe must exceed this"
    )
    min_profit_factor: float = Field(
        default=1.0, ge=0.0, description="gate: the record's profit factor must exceed this"
    )
    max_pbo: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="gate: probability of backtest overfitting of "
        "the candidate's procedure must be below this (1: gate off)",
    )
    min_trl_confidence: float = Field(
        default=0.95,
        ge=0.0,
        lt=1.0,
        description="gate: the record must be at least the "
        "minimum track record length for a Sharpe > 0 at this confidence (0: gate off)",
    )
    dsr_variance: Literal["null", "observed", "max"] = Field(
        default="null",
        description="V of the Deflated Sharpe Ratio: null: 1 / (T - 1), the "
        "variance of a zero-skill Sharpe estimate over the record's T periods (the false-strategy "
        "theorem's null); observed: the variance of the cluster representatives' Sharpe ratios "
        "(inflated by real differences in skill, e.g. a strategy and its mirror); max: the larger",
    )
    pbo_blocks: int = Field(
        default=16,
        ge=2,
        multiple_of=2,
        description="blocks of the combinatorially symmetric cross-validation behind PBO (even)",
    )
    max_per_family: int = Field(default=2, ge=1, description="picks per strategy family")
    min_param_distance: float = Field(
        default=0.15,
        ge=0.0,
        le=1.0,
        description="normalized parameter distance between picks of a family",
    )
    w_dsr: float = Field(default=0.30, ge=0.0, description="weight of the DSR component")
    w_sharpe: float = Field(default=0.20, ge=0.0, description="weight of the OOS Sharpe component")
    w_stability: float = Field(default=0.20, ge=0.0, description="weight of fold stability")
    w_drawdown: float = Field(default=0.15, ge=0.0, description="weight of the drawdown component")
    w_profit_factor: float = Field(default=0.15, ge=0.0, description="weight of the profit factor")
    sharpe_scale: float = Field(
        default=2.0, gt=0.0, description="annualized Sharpe mapped to tanh(1)"
    )
    drawdown_scale: float = Field(
        default=0.15, gt=0.0, description="drawdown (fraction) mapped to 1/e"
    )
    pf_target: float = Field(
        default=2.0, gt=1.0, description="profit factor that earns the full component"
    )
    pf_cap: float = Field(
        default=10.0, gt=1.0, description="an infinite profit factor counts as this"
    )
    dispersion_scale: float = Field(default=1.0, gt=0.0, description="fold Sharpe sd mapped to 1/e")

    @model_validator(mode="after")
    def _weights(self) -> RankingConfig:
        if self.weights_sum() <= 0.0:
            raise ValueError("at least one weight (w_*) must be > 0")
        return self

    def weights_sum(self) -> float:
        """Sum of the component weights."""
        return (
            self.w_dsr + self.w_sharpe + self.w_stability + self.w_drawdown + self.w_profit_factor
        )

    def weights(self) -> dict[str, float]:
        """Component -> normalized weight (sums to 1)."""
        s = self.weights_sum()
        return {
            "dsr": self.w_dsr / s,
            "sharpe": self.w_sharpe / s,
            "drawdown": self.w_drawdown / s,
            "profit_factor": self.w_profit_factor / s,
            "stability": self.w_stability / s,
        }


class SearchConfig(Frozen):
    """What the search explores and how candidates are judged (frozen; unknown fields are errors)."""

    families: tuple[str, ...] = Field(
        (), description="strategy families to search; empty: every registered family"
    )
    timeframes: tuple[str, ...] = Field(("15m", "1h", "4h"), description="bar timeframes to search")
    symbol: str = Field("EURUSD", description="symbol of the bars")
    n_trials: int = Field(
        200, ge=1, description="candidates (parameter sets) to evaluate, failed ones included"
    )
    seed: int = Field(0, ge=0, description="seed of every sampler (each island derives its own)")
    max_concurrent: int | None = Field(
        None,
        ge=1,
        description="islands (Tune trials) at once; None: the cluster's CPUs. "
        "Results do not depend on it",
    )
    objective: Literal["penalized_sharpe", "sharpe_and_drawdown"] = Field(
        "penalized_sharpe",
        description="penalized_sharpe: the scalar objective; sharpe_and_drawdown: NSGA-II "
        "maximizing OOS Sharpe and minimizing the worst OOS drawdown",
    )
    sampler: Literal["tpe", "cmaes", "nsga2", "random", "sobol", "grid"] | None = Field(
        None,
        description="how populations are proposed: tpe / cmaes / nsga2 (Optuna proposes "
        "neighbourhood centres), random, sobol, grid (sweeps); None: tpe, or nsga2 with "
        "objective sharpe_and_drawdown",
    )
    population_size: int = Field(
        512,
        ge=1,
        le=100_000,
        description="candidates per population (one kernel call, one Tune report)",
    )
    centres: int = Field(
        8,
        ge=1,
        le=1_000,
        description="Optuna proposals per population; each is expanded into "
        "population_size / centres neighbours",
    )
    neighbourhood_radius: float = Field(
        0.05,
        gt=0,
        le=1,
        description="std of a neighbour's perturbation, fraction of a "
        "parameter's levels (at least one step)",
    )
    island_size: int = Field(
        10_000,
        ge=1,
        description="most candidates of one island (Tune trial); a stream "
        "(timeframe x family) with more is split into several islands",
    )
    finalists: int = Field(
        8, ge=1, le=1_000, description="best candidates per island kept for the ranking"
    )
    max_failures: int = Field(
        2, ge=0, description="retries of an island whose worker died (from its last population)"
    )
    progress_interval_s: float = Field(3.0, gt=0, description="seconds between progress lines")
    n_folds: int = Field(4, ge=1, description="walk-forward folds")
    scheme: Literal["rolling", "anchored"] = Field("rolling", description="in-sample window scheme")
    oos_fraction: float = Field(0.25, gt=0, lt=1, description="OOS share of a fold's IS+OOS window")
    holdout_fraction: float = Field(0.2, ge=0, lt=1, description="final holdout, share of the span")
    warmup_bars: int = Field(100, ge=0, description="bars reserved for indicator warm-up")
    embargo_bars: int | None = Field(
        None,
        ge=0,
        description="bars left out between each in-sample window and the window it "
        "selects for (out-of-sample window or holdout); None: warmup_bars, the longest "
        "indicator horizon the spaces use",
    )
    matrix_candidates: int = Field(
        20_000,
        ge=2,
        description="most candidates per stream whose return series enter PBO "
        "and the effective-trials clustering (an even, seeded sample of the rest)",
    )
    objective_config: ObjectiveConfig = ObjectiveConfig()
    backtest: BacktestConfig = BacktestConfig()
    ranking: RankingConfig = RankingConfig()
    top: int = Field(5, ge=1, description="strategies in the final ranking")
    pattern_filter: bool = Field(
        True,
        description="also search the candle-pattern entry filter (pattern_filter, "
        "pattern_lookback); false pins it to 'none' so a small budget goes to the rules",
    )

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one timeframe is needed")
        names = tuple(parse_timeframe(t).name for t in v)
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate timeframes in {v}")
        return names

    @field_validator("families")
    @classmethod
    def _families(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from aio_ray.strategies.space import SPACES  # the family registry: only when named

        unknown = [f for f in v if f not in SPACES]
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {sorted(SPACES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate families in {v}")
        return v

    def sampler_name(self) -> str:
        """The population sampler used (``sampler``, or the objective's default)."""
        if self.sampler is not None:
            return self.sampler
        return "nsga2" if self.objective == "sharpe_and_drawdown" else "tpe"

    def embargo(self) -> int:
        """Bars between an in-sample window and the window it selects for."""
        return self.warmup_bars if self.embargo_bars is None else self.embargo_bars

    def family_names(self) -> tuple[str, ...]:
        """The families searched (all registered ones when ``families`` is empty)."""
        from aio_ray.strategies.space import SPACES  # the family registry: only when asked

        return self.families or tuple(sorted(SPACES))
