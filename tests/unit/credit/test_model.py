from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bnpl.credit.model import (
    FeatureValue,
    RiskModel,
    RiskModelError,
    parse_version,
)

ARTIFACTS = Path(str(resources.files("bnpl.credit").joinpath("artifacts")))
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return RiskModel.load()


def packaged_metadata() -> dict[str, Any]:
    latest = max(ARTIFACTS.glob("risk-*.json"), key=lambda p: parse_version(p.stem))
    data: dict[str, Any] = json.loads(latest.read_text(encoding="utf-8"))
    return data


def applicant(**changes: FeatureValue) -> dict[str, FeatureValue]:
    """A typical established consumer: a year of clean history, 20% utilisation."""
    features: dict[str, FeatureValue] = {
        "account_age_days": 400,
        "on_time_payments": 24,
        "late_payments": 0,
        "outstanding_balance": 20_000,
        "credit_limit": 100_000,
        "utilisation": 0.2,
        "approved_checkouts_24h": 0,
        "amount": 15_000,
        "merchant_category": 0,
        "thin_file": 0,
        "bureau_score": None,
    }
    features.update(changes)
    return features


def test_the_packaged_model_matches_its_metadata(model: RiskModel) -> None:
    metadata = packaged_metadata()
    assert model.version == metadata["version"]
    assert parse_version(model.version) >= (2026, 11, 1)
    assert list(model.feature_names) == metadata["feature_names"]
    assert model.metadata.holdout_auc == metadata["holdout_auc"]
    assert model.metadata.suggested_cutoff == metadata["suggested_cutoff"]
    assert model.metadata.training_rows == metadata["training_rows"] >= 50_000


def test_the_artifact_is_small_and_a_real_classifier() -> None:
    metadata = packaged_metadata()
    assert (ARTIFACTS / metadata["model_file"]).stat().st_size < 500 * 1024
    assert 0.7 < metadata["holdout_auc"] <= metadata["holdout_oracle_auc"]
    assert 0.0 < metadata["suggested_cutoff"] < 1.0


def test_the_features_are_the_documented_ones(model: RiskModel) -> None:
    assert set(model.feature_names) == set(applicant())


def test_probabilities_are_within_0_and_1(model: RiskModel) -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        limit = int(rng.choice([50_000, 100_000, 500_000]))
        balance = int(rng.integers(0, limit))
        thin = bool(rng.random() < 0.4)
        p = model.predict_default_probability(
            {
                "account_age_days": int(rng.integers(0, 3_000)),
                "on_time_payments": int(rng.integers(0, 3 if thin else 300)),
                "late_payments": int(rng.integers(0, 1 if thin else 60)),
                "outstanding_balance": balance,
                "credit_limit": limit,
                "utilisation": balance / limit,
                "approved_checkouts_24h": int(rng.integers(0, 5)),
                "amount": int(rng.integers(1_000, 1_000_000)),
                "merchant_category": int(rng.integers(0, 8)),
                "thin_file": int(thin),
                "bureau_score": int(rng.integers(300, 851)) if thin else None,
            }
        )
        assert 0.0 <= p <= 1.0
    assert 0.0 <= model.predict_default_probability({}) <= 1.0  # everything missing


def test_predictions_are_deterministic(model: RiskModel) -> None:
    features = applicant(late_payments=3)
    assert model.predict_default_probability(features) == model.predict_default_probability(
        features
    )


def test_a_bad_history_scores_worse_than_a_clean_long_one(model: RiskModel) -> None:
    clean_cases = [
        applicant(account_age_days=days, on_time_payments=n, utilisation=u, outstanding_balance=b)
        for days, n, u, b in [(900, 60, 0.05, 5_000), (1_500, 120, 0.1, 10_000), (700, 40, 0, 0)]
    ]
    risky_cases = [
        applicant(
            account_age_days=days,
            on_time_payments=n,
            late_payments=late,
            utilisation=u,
            outstanding_balance=b,
            approved_checkouts_24h=3,
        )
        for days, n, late, u, b in [
            (120, 6, 6, 0.9, 90_000),
            (300, 10, 12, 0.85, 85_000),
            (60, 2, 4, 0.8, 80_000),
        ]
    ]
    clean = np.mean([model.predict_default_probability(f) for f in clean_cases])
    risky = np.mean([model.predict_default_probability(f) for f in risky_cases])
    assert risky > 2 * clean


@pytest.mark.parametrize(
    ("feature", "low", "high"),
    [("late_payments", 0, 15), ("utilisation", 0.05, 0.95), ("approved_checkouts_24h", 0, 4)],
)
def test_the_policy_monotone_features_never_lower_the_score(
    model: RiskModel, feature: str, low: float, high: float
) -> None:
    base = applicant()
    lower = model.predict_default_probability({**base, feature: low})
    higher = model.predict_default_probability({**base, feature: high})
    assert higher >= lower


def test_a_thin_file_without_a_bureau_score_is_scored(model: RiskModel) -> None:
    thin = applicant(account_age_days=10, on_time_payments=0, outstanding_balance=0, thin_file=1)
    thin["utilisation"] = 0.0
    no_hit = model.predict_default_probability({**thin, "bureau_score": None})
    absent = {k: v for k, v in thin.items() if k != "bureau_score"}
    assert model.predict_default_probability(absent) == no_hit
    assert model.predict_default_probability({**thin, "bureau_score": math.nan}) == no_hit
    assert 0.0 < no_hit < 1.0
    good = model.predict_default_probability({**thin, "bureau_score": 800})
    poor = model.predict_default_probability({**thin, "bureau_score": 450})
    assert poor > good


def test_unknown_or_non_numeric_features_are_rejected(model: RiskModel) -> None:
    with pytest.raises(ValueError, match="unknown features"):
        model.predict_default_probability({**applicant(), "late_payment": 1})
    with pytest.raises(TypeError):
        model.predict_default_probability(applicant(amount="15000"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="infinite"):
        model.predict_default_probability(applicant(utilisation=math.inf))


def test_used_features_are_in_model_order_with_none_for_missing(model: RiskModel) -> None:
    used = model.used_features({"late_payments": 2, "bureau_score": math.nan})
    assert tuple(used) == model.feature_names
    assert used["late_payments"] == 2
    assert used["bureau_score"] is None
    assert used["amount"] is None


# Loading


def copy_artifact(folder: Path, version: str) -> Path:
    """Copy the packaged artifact into ``folder`` under another version; returns its metadata."""
    metadata = packaged_metadata()
    shutil.copy(ARTIFACTS / metadata["model_file"], folder / f"{version}.txt")
    metadata.update(version=version, model_file=f"{version}.txt")
    path = folder / f"{version}.json"
    path.write_text(json.dumps(metadata), encoding="utf-8")
    return path


def test_loading_a_folder_takes_the_highest_version(tmp_path: Path) -> None:
    for version in ("risk-2026.9.3", "risk-2026.11.2", "risk-2026.10.7"):
        copy_artifact(tmp_path, version)
    (tmp_path / "notes.json").write_text("{}", encoding="utf-8")
    # 11 > 9 and 10: versions compare as numbers, not text.
    assert RiskModel.load(tmp_path).version == "risk-2026.11.2"


def test_loading_by_metadata_or_model_file(tmp_path: Path) -> None:
    metadata = copy_artifact(tmp_path, "risk-2027.1.1")
    assert RiskModel.load(metadata).version == "risk-2027.1.1"
    assert RiskModel.load(str(metadata.with_suffix(".txt"))).version == "risk-2027.1.1"


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    metadata = copy_artifact(tmp_path, "risk-2027.1.1")
    model_file = metadata.with_suffix(".txt")
    model_file.write_text(model_file.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(RiskModelError, match="SHA-256"):
        RiskModel.load(metadata)


def test_metadata_disagreeing_with_the_booster_is_refused(tmp_path: Path) -> None:
    metadata = copy_artifact(tmp_path, "risk-2027.1.1")
    data = json.loads(metadata.read_text(encoding="utf-8"))
    data["feature_names"] = list(reversed(data["feature_names"]))
    metadata.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RiskModelError, match="features"):
        RiskModel.load(metadata)


def test_missing_artifacts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RiskModelError, match="no risk model artifact"):
        RiskModel.load(tmp_path)
    with pytest.raises(RiskModelError):
        RiskModel.load(tmp_path / "risk-2026.11.1.json")


@pytest.mark.parametrize("version", ["risk-2026.13.1", "risk-26.1.1", "model-2026.11.1"])
def test_malformed_versions_are_refused(version: str) -> None:
    with pytest.raises(RiskModelError):
        parse_version(version)


def test_the_training_script_reproduces_the_packaged_model(tmp_path: Path) -> None:
    metadata = packaged_metadata()
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "train_risk_model.py"),
            "--version",
            metadata["version"],
            "--seed",
            str(metadata["seed"]),
            "--rows",
            str(metadata["training_rows"]),
            "--trained-on",
            metadata["trained_on"],
            "--out-dir",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    retrained = json.loads((tmp_path / f"{metadata['version']}.json").read_text(encoding="utf-8"))
    # Same seed, same data, same model (up to floating point differences between machines).
    assert retrained["feature_names"] == metadata["feature_names"]
    assert retrained["holdout_auc"] == pytest.approx(metadata["holdout_auc"], abs=0.005)
    assert retrained["suggested_cutoff"] == pytest.approx(metadata["suggested_cutoff"], abs=0.01)
