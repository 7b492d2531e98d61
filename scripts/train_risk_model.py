"""Train the credit risk model on a synthetic, reproducible population and write its artifact.

Usage::

    uv run python scripts/train_risk_model.py  # writes src/bnpl/credit/artifacts/
    uv run python scripts/train_risk_model.py --help

The data is synthetic: there is no real repayment history to learn from yet. The generating
process below is documented in docs/risk-model.md and is deliberately not a formula the model can
copy: defaults depend on an unobserved creditworthiness, on an unobserved shock, on non-linear
effects and on interactions, so the learned model is a real (and imperfect) classifier.

Money features are integer minor units, exactly as the feature store serves them; they become
floats only inside the model's feature matrix, which is not a money path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

DEFAULT_VERSION = "risk-2026.11.1"
DEFAULT_SEED = 20261101
DEFAULT_ROWS = 120_000
HOLDOUT_SHARE = 0.2
TARGET_DEFAULT_RATE = 0.07
# Share of the riskiest applicants (as scored on the holdout) the suggested cutoff declines.
SUGGESTED_DECLINE_SHARE = 0.10

# Rules 5 and 6 of the credit decision run before the model, so the model only ever scores
# applicants that passed them; the training population is filtered the same way.
VELOCITY_LIMIT = 5
DEFAULT_CREDIT_LIMIT = 100_000

# Order matters: it is the column order of the model's feature matrix.
FEATURE_NAMES: tuple[str, ...] = (
    "account_age_days",
    "on_time_payments",
    "late_payments",
    "outstanding_balance",
    "credit_limit",
    "utilisation",
    "approved_checkouts_24h",
    "amount",
    "merchant_category",
    "thin_file",
    "bureau_score",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("merchant_category",)
# +1: the score may only rise with the feature, -1: only fall, 0: free. Constraints where the
# direction is a lending policy, not an accident of the sample (and explainable to a consumer).
MONOTONE: dict[str, int] = {
    "account_age_days": -1,
    "late_payments": 1,
    "utilisation": 1,
    "approved_checkouts_24h": 1,
    "bureau_score": -1,
}
# Merchant category groups: code -> (name, share of checkouts, effect on the default log-odds).
MERCHANT_CATEGORIES: dict[int, tuple[str, float, float]] = {
    0: ("general_retail", 0.22, 0.00),
    1: ("fashion", 0.24, 0.05),
    2: ("electronics", 0.14, 0.25),
    3: ("home_furniture", 0.10, -0.10),
    4: ("travel", 0.08, 0.20),
    5: ("health_beauty", 0.10, -0.15),
    6: ("sports_outdoor", 0.07, -0.05),
    7: ("digital_goods", 0.05, 0.60),
}
THIN_FILE_MAX_HISTORY = 4  # fewer than 4 installments of repayment history = thin file
CREDIT_LIMITS = np.array([50_000, 100_000, 150_000, 200_000, 300_000, 500_000], dtype=np.int64)
CREDIT_LIMIT_SHARES = np.array([0.05, 0.55, 0.15, 0.12, 0.08, 0.05])

LGB_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "num_leaves": 15,
    "learning_rate": 0.1,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
}
NUM_TREES = 100

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def generate(rows: int, seed: int) -> tuple[FloatArray, IntArray, FloatArray, dict[str, float]]:
    """Draw ``rows`` checkout applications and their default labels.

    Returns the feature matrix (columns in FEATURE_NAMES order, NaN where missing), the 0/1
    labels, the true default probabilities the labels were drawn from (to measure the best AUC
    any model could reach) and a few statistics of the population, for the metadata.
    """
    rng = np.random.default_rng(seed)
    # Draw extra applicants: the rule filter below removes some of them.
    n = int(rows * 1.25)

    # Unobserved creditworthiness (higher = riskier): drives history, balance and bureau score,
    # and the label, but the model never sees it directly.
    risk = rng.standard_normal(n)

    account_age_days = np.minimum(rng.exponential(320.0, n), 2_500.0).astype(np.int64)
    activity = rng.gamma(1.5, 0.8, n)  # installments falling due per 30 days of tenure
    history = rng.poisson(account_age_days / 30.0 * activity)
    late_share = _sigmoid(-2.8 + 0.9 * risk)
    late_payments = rng.binomial(history, late_share).astype(np.int64)
    on_time_payments = (history - late_payments).astype(np.int64)

    credit_limit = rng.choice(CREDIT_LIMITS, size=n, p=CREDIT_LIMIT_SHARES)
    # New consumers keep the default limit (operators raise limits for known customers only).
    credit_limit = np.where(account_age_days < 90, DEFAULT_CREDIT_LIMIT, credit_limit)

    has_open_plans = rng.random(n) < np.clip(0.25 + account_age_days / 1_000.0, 0.0, 0.8)
    utilisation_draw = _sigmoid(-1.2 + 0.7 * risk + rng.standard_normal(n))
    outstanding_balance = np.where(
        has_open_plans, np.floor(utilisation_draw * credit_limit), 0
    ).astype(np.int64)
    utilisation = outstanding_balance / credit_limit

    burst = rng.random(n) < 0.04  # a few consumers check out repeatedly within hours
    approved_checkouts_24h = np.where(
        burst, rng.poisson(3.0, n), rng.poisson(0.15 + 0.1 * _sigmoid(risk), n)
    ).astype(np.int64)

    # Log-normal basket, median 150.00 in a two-decimal currency, within the plans' overall range.
    amount = np.clip(np.exp(rng.normal(np.log(15_000.0), 0.9, n)), 1_000, 1_000_000)
    amount = np.round(amount).astype(np.int64)

    codes = np.array(list(MERCHANT_CATEGORIES), dtype=np.int64)
    shares = np.array([c[1] for c in MERCHANT_CATEGORIES.values()])
    merchant_category = rng.choice(codes, size=n, p=shares / shares.sum())
    category_effect = np.array([c[2] for c in MERCHANT_CATEGORIES.values()])[merchant_category]

    # The bureau is consulted only for thin-file consumers; 8% of them are a "no hit".
    thin_file = (on_time_payments + late_payments) < THIN_FILE_MAX_HISTORY
    bureau_draw = np.clip(np.round(680.0 - 55.0 * risk + rng.normal(0.0, 40.0, n)), 300, 850)
    bureau_hit = thin_file & (rng.random(n) >= 0.08)
    bureau_score = np.where(bureau_hit, bureau_draw, np.nan)

    # Latent default process (log-odds), see docs/risk-model.md.
    log_late = np.log1p(late_payments)
    bureau_term = np.where(
        thin_file, np.where(bureau_hit, -(bureau_draw - 650.0) / 80.0, 0.5) + 0.3, 0.0
    )
    shock = rng.normal(0.0, 0.6, n)  # job loss, illness: nothing the model can see
    logit_wo_intercept = (
        0.9 * risk
        + 0.35 * log_late
        - 0.25 * np.log1p(account_age_days / 30.0)
        - 0.10 * np.log1p(on_time_payments)
        + 1.0 * utilisation
        + 2.0 * np.maximum(utilisation - 0.7, 0.0)
        + 0.6 * utilisation * log_late
        + 0.8 * amount / credit_limit
        + 0.30 * approved_checkouts_24h * np.where(account_age_days < 30, 2.5, 1.0)
        + category_effect
        + bureau_term
        + shock
    )

    # Rules 5 (velocity) and 6 (credit limit) decline before the model is asked.
    reaches_model = (approved_checkouts_24h < VELOCITY_LIMIT) & (
        outstanding_balance + amount <= credit_limit
    )
    keep = np.flatnonzero(reaches_model)[:rows]
    if keep.size < rows:
        raise RuntimeError("the rule filter removed more applicants than expected")

    # Intercept chosen (by bisection on the expected rate) so the base default rate is 7%.
    base = logit_wo_intercept[keep]
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if float(_sigmoid(base + mid).mean()) < TARGET_DEFAULT_RATE:
            lo = mid
        else:
            hi = mid
    intercept = (lo + hi) / 2.0
    true_probability = _sigmoid(base + intercept)
    labels = (rng.random(keep.size) < true_probability).astype(np.int64)

    columns: dict[str, FloatArray] = {
        "account_age_days": account_age_days[keep].astype(np.float64),
        "on_time_payments": on_time_payments[keep].astype(np.float64),
        "late_payments": late_payments[keep].astype(np.float64),
        "outstanding_balance": outstanding_balance[keep].astype(np.float64),
        "credit_limit": credit_limit[keep].astype(np.float64),
        "utilisation": utilisation[keep],
        "approved_checkouts_24h": approved_checkouts_24h[keep].astype(np.float64),
        "amount": amount[keep].astype(np.float64),
        "merchant_category": merchant_category[keep].astype(np.float64),
        "thin_file": thin_file[keep].astype(np.float64),
        "bureau_score": bureau_score[keep],
    }
    matrix = np.column_stack([columns[name] for name in FEATURE_NAMES])
    stats = {
        "intercept": round(intercept, 4),
        "default_rate": round(float(labels.mean()), 4),
        "thin_file_share": round(float(thin_file[keep].mean()), 4),
        "rule_filtered_share": round(1.0 - float(reaches_model.mean()), 4),
    }
    return matrix, labels, true_probability, stats


def split(size: int, seed: int) -> tuple[IntArray, IntArray]:
    """Row indices of the fitting part (80%) and of the held-out part (20%)."""
    order = np.random.default_rng(seed + 1).permutation(size)
    n_holdout = int(size * HOLDOUT_SHARE)
    return order[n_holdout:], order[:n_holdout]


def train(matrix: FloatArray, labels: IntArray, seed: int, fit: IntArray) -> lgb.Booster:
    """Fit the booster on the rows ``fit``."""
    params = dict(LGB_PARAMS)
    params["seed"] = seed
    params["monotone_constraints"] = [MONOTONE.get(name, 0) for name in FEATURE_NAMES]
    dataset = lgb.Dataset(
        matrix[fit],
        label=labels[fit],
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL_FEATURES),
        free_raw_data=False,
    )
    return lgb.train(params, dataset, num_boost_round=NUM_TREES)


def roc_auc(labels: NDArray[Any], scores: NDArray[np.float64]) -> float:
    """Area under the ROC curve: the chance that a random default scores above a random
    repayment, ties counting half (the Mann-Whitney U statistic over average ranks)."""
    order = np.argsort(scores, kind="mergesort")
    _, tie_group, tie_sizes = np.unique(scores[order], return_inverse=True, return_counts=True)
    last = np.cumsum(tie_sizes)  # 1-based rank of each tie group's last member
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = ((last - tie_sizes + 1 + last) / 2)[tie_group]
    positives = labels == 1
    n1 = int(positives.sum())
    n0 = scores.size - n1
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help="e.g. risk-2026.11.1")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "src" / "bnpl" / "credit" / "artifacts",
    )
    parser.add_argument(
        "--trained-on",
        type=dt.date.fromisoformat,
        default=dt.datetime.now(dt.UTC).date(),
        help="date recorded in the metadata (YYYY-MM-DD, default today in UTC)",
    )
    args = parser.parse_args(argv)

    matrix, labels, true_probability, stats = generate(args.rows, args.seed)
    fit, holdout = split(labels.size, args.seed)
    booster = train(matrix, labels, args.seed, fit)
    y_holdout = labels[holdout]
    scores = np.asarray(booster.predict(matrix[holdout], num_threads=1), dtype=np.float64)
    auc = roc_auc(y_holdout, scores)
    # The AUC of the true probabilities: the ceiling set by the unobserved risk and noise.
    oracle_auc = roc_auc(y_holdout, true_probability[holdout])
    cutoff = round(float(np.quantile(scores, 1.0 - SUGGESTED_DECLINE_SHARE)), 4)
    approved = scores <= cutoff

    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.out_dir / f"{args.version}.txt"
    booster.save_model(str(model_path), num_iteration=-1)
    model_bytes = model_path.read_bytes()
    metadata = {
        "version": args.version,
        "format": "lightgbm-text",
        "model_file": model_path.name,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "lightgbm_version": lgb.__version__,
        "objective": "binary: probability of default within 12 months",
        "feature_names": list(FEATURE_NAMES),
        "categorical_features": list(CATEGORICAL_FEATURES),
        "monotone_constraints": MONOTONE,
        "num_trees": booster.num_trees(),
        "num_leaves": LGB_PARAMS["num_leaves"],
        "seed": args.seed,
        "training_rows": int(labels.size),
        "fit_rows": int(labels.size - y_holdout.size),
        "holdout_rows": int(y_holdout.size),
        "holdout_auc": round(auc, 4),
        "holdout_oracle_auc": round(oracle_auc, 4),
        "holdout_default_rate": round(float(y_holdout.mean()), 4),
        "holdout_mean_probability": round(float(scores.mean()), 4),
        "suggested_cutoff": cutoff,
        "suggested_cutoff_basis": (
            f"declines the riskiest {SUGGESTED_DECLINE_SHARE:.0%} of the holdout population"
        ),
        "holdout_default_rate_below_cutoff": round(float(y_holdout[approved].mean()), 4),
        "population": stats,
        "generator": "scripts/train_risk_model.py (synthetic, see docs/risk-model.md)",
        "trained_on": args.trained_on.isoformat(),
    }
    metadata_path = args.out_dir / f"{args.version}.json"
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")

    print(f"wrote {model_path} ({len(model_bytes) / 1024:.0f} KiB) and {metadata_path.name}")
    print(
        f"rows={labels.size} default_rate={stats['default_rate']:.4f} "
        f"holdout_auc={auc:.4f} oracle_auc={oracle_auc:.4f} suggested_cutoff={cutoff} "
        f"default_rate_below_cutoff={metadata['holdout_default_rate_below_cutoff']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
