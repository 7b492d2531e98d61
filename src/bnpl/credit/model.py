"""The credit risk model: a trained LightGBM classifier, loaded once at start-up.

An artifact is a pair of files named after its version (``risk-YYYY.MM.N``):

- ``risk-<version>.txt``: the LightGBM model text (``Booster.save_model``);
- ``risk-<version>.json``: its metadata (feature names in column order, training set, holdout
  AUC, suggested cutoff, the model file's SHA-256, ...).

``scripts/train_risk_model.py`` writes both; docs/risk-model.md describes the features and how
the model was trained. The score is a probability of default within 12 months, a float in
[0, 1]: it is not money, so a float is the right type for it.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

__all__ = [
    "FeatureValue",
    "RiskModel",
    "RiskModelError",
    "RiskModelMetadata",
    "latest_artifact",
    "parse_version",
]

FeatureValue = float | int | None

_VERSION = re.compile(r"^risk-(\d{4})\.(\d{1,2})\.(\d+)$")
_PACKAGED_ARTIFACTS = ("bnpl.credit", "artifacts")


class RiskModelError(Exception):
    """The model artifact is missing, unreadable or inconsistent with its metadata."""


def parse_version(version: str) -> tuple[int, int, int]:
    """``"risk-2026.11.1"`` -> ``(2026, 11, 1)``, so versions sort by number, not by text."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise RiskModelError(f"not a risk model version: {version!r} (expected risk-YYYY.MM.N)")
    year, month, sequence = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        raise RiskModelError(f"not a risk model version: {version!r} (month {month})")
    return year, month, sequence


def _packaged_artifacts() -> Traversable:
    package, folder = _PACKAGED_ARTIFACTS
    return resources.files(package).joinpath(folder)


def latest_artifact(directory: Traversable | None = None) -> Traversable:
    """The metadata file of the highest version in ``directory`` (default: the packaged one)."""
    folder = directory if directory is not None else _packaged_artifacts()
    candidates: list[tuple[tuple[int, int, int], Traversable]] = []
    for entry in folder.iterdir():
        stem, dot, suffix = entry.name.rpartition(".")
        if dot and suffix == "json" and _VERSION.fullmatch(stem) is not None:
            candidates.append((parse_version(stem), entry))
    if not candidates:
        raise RiskModelError(f"no risk model artifact (risk-YYYY.MM.N.json) in {folder}")
    return max(candidates, key=lambda candidate: candidate[0])[1]


@dataclass(frozen=True, slots=True)
class RiskModelMetadata:
    """What the artifact's JSON says about the model (the fields the platform relies on)."""

    version: str
    feature_names: tuple[str, ...]
    model_file: str
    model_sha256: str
    training_rows: int
    seed: int
    holdout_auc: float
    suggested_cutoff: float
    trained_on: date

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RiskModelMetadata:
        try:
            names = raw["feature_names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise TypeError("feature_names must be a list of strings")
            metadata = cls(
                version=_typed(raw, "version", str),
                feature_names=tuple(names),
                model_file=_typed(raw, "model_file", str),
                model_sha256=_typed(raw, "model_sha256", str),
                training_rows=_typed(raw, "training_rows", int),
                seed=_typed(raw, "seed", int),
                holdout_auc=float(_typed(raw, "holdout_auc", float)),
                suggested_cutoff=float(_typed(raw, "suggested_cutoff", float)),
                trained_on=date.fromisoformat(_typed(raw, "trained_on", str)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RiskModelError(f"invalid risk model metadata: {exc}") from exc
        parse_version(metadata.version)
        if len(set(metadata.feature_names)) != len(metadata.feature_names):
            raise RiskModelError("invalid risk model metadata: duplicate feature names")
        if not 0.0 <= metadata.suggested_cutoff <= 1.0:
            raise RiskModelError("invalid risk model metadata: suggested_cutoff outside [0, 1]")
        return metadata


def _typed(raw: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    value = raw[key]
    # JSON has one number type: an integral float such as an AUC of 1 parses as int.
    accepted: tuple[type[Any], ...] = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise TypeError(f"{key} must be {kind.__name__}, got {type(value).__name__}")
    return value


class RiskModel:
    """A loaded risk model. Load it once (``RiskModel.load()``) and share it: it is immutable,
    and predicting from several threads at once is safe."""

    __slots__ = ("_booster", "_index", "_metadata")

    def __init__(self, booster: lgb.Booster, metadata: RiskModelMetadata) -> None:
        booster_names = tuple(booster.feature_name())
        if booster_names != metadata.feature_names:
            raise RiskModelError(
                f"model {metadata.version}: the booster's features {booster_names} differ from "
                f"the metadata's {metadata.feature_names}"
            )
        self._booster = booster
        self._metadata = metadata
        self._index = {name: i for i, name in enumerate(metadata.feature_names)}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> RiskModel:
        """Load a model artifact.

        ``path`` is the artifact's metadata (``risk-<version>.json``) or model text
        (``risk-<version>.txt``), or a folder, from which the highest version is taken. Without
        it, the highest version packaged with ``bnpl.credit`` is loaded. Raises
        ``RiskModelError`` when the artifact is missing or its parts do not agree.
        """
        folder, metadata_name = _locate(path)
        metadata_file = folder.joinpath(metadata_name)
        try:
            raw = json.loads(metadata_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RiskModelError(f"cannot read risk model metadata {metadata_file}: {exc}") from exc
        if not isinstance(raw, dict):
            raise RiskModelError(f"invalid risk model metadata {metadata_file}: not an object")
        metadata = RiskModelMetadata.from_json(raw)
        if metadata_file.name != f"{metadata.version}.json":
            raise RiskModelError(
                f"metadata file {metadata_file.name} does not hold version {metadata.version}"
            )
        if metadata.model_file != f"{metadata.version}.txt":
            raise RiskModelError(
                f"model {metadata.version}: unexpected model file {metadata.model_file!r}"
            )
        model_file = folder.joinpath(metadata.model_file)
        try:
            model_bytes = model_file.read_bytes()
        except OSError as exc:
            raise RiskModelError(f"cannot read risk model {model_file}: {exc}") from exc
        if hashlib.sha256(model_bytes).hexdigest() != metadata.model_sha256:
            raise RiskModelError(
                f"model {metadata.version}: {metadata.model_file} does not match the SHA-256 "
                "recorded in its metadata"
            )
        try:
            booster = lgb.Booster(model_str=model_bytes.decode("utf-8"))
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise RiskModelError(f"model {metadata.version}: not a LightGBM model: {exc}") from exc
        return cls(booster, metadata)

    @property
    def version(self) -> str:
        """The model version recorded with every decision, e.g. ``"risk-2026.11.1"``."""
        return self._metadata.version

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features the model reads, in the order of its feature matrix."""
        return self._metadata.feature_names

    @property
    def metadata(self) -> RiskModelMetadata:
        """The artifact's metadata: training set, holdout AUC, suggested cutoff, ..."""
        return self._metadata

    def used_features(self, features: Mapping[str, FeatureValue]) -> dict[str, FeatureValue]:
        """The model's features picked out of ``features``, in model order, ``None`` where
        missing: what a decision records as "the features it used" (JSON-safe, no NaN)."""
        self._check_names(features)
        used: dict[str, FeatureValue] = {}
        for name in self.feature_names:
            value = features.get(name)
            used[name] = None if value is None or _is_nan(value) else value
        return used

    def predict_default_probability(self, features: Mapping[str, FeatureValue]) -> float:
        """The probability, in [0, 1], that this applicant defaults within 12 months.

        ``features`` maps feature names to numbers. A feature that is absent or ``None`` (or
        NaN) is missing, which the model handles (e.g. no ``bureau_score`` for a consumer the
        bureau was not asked about). A name the model does not know is an error, not silently
        ignored: it is almost always a feature-store schema mismatch. Runs in-process on one
        thread; about 30 microseconds per call.
        """
        self._check_names(features)
        row = np.full((1, len(self._index)), np.nan, dtype=np.float64)
        for name, value in features.items():
            if value is not None:
                row[0, self._index[name]] = _as_float(name, value)
        prediction = self._booster.predict(row, num_threads=1)
        probability = float(prediction[0])
        if not 0.0 <= probability <= 1.0:  # also catches NaN
            raise RiskModelError(f"model {self.version} produced {probability} for {features}")
        return probability

    def _check_names(self, features: Mapping[str, FeatureValue]) -> None:
        unknown = [name for name in features if name not in self._index]
        if unknown:
            raise ValueError(
                f"unknown features for model {self.version}: {sorted(unknown)}; "
                f"it reads {list(self.feature_names)}"
            )

    def __repr__(self) -> str:
        return f"RiskModel(version={self.version!r}, features={len(self.feature_names)})"


def _locate(path: str | os.PathLike[str] | None) -> tuple[Traversable, str]:
    """The folder holding the artifact and the name of its metadata file."""
    if path is None:
        folder = _packaged_artifacts()
        return folder, latest_artifact(folder).name
    location = Path(path)
    if location.is_dir():
        return location, latest_artifact(location).name
    if location.suffix == ".txt":
        return location.parent, location.with_suffix(".json").name
    return location.parent, location.name


def _as_float(name: str, value: object) -> float:
    # Typed as object: the mapping comes from the feature store, checked here at run time.
    if not isinstance(value, numbers.Real):
        raise TypeError(f"feature {name!r} must be a number or None, got {value!r}")
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"feature {name!r} is infinite")
    return number


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and math.isnan(value)
