"""The per-batch step both runners share: decoded images -> one engine call -> records.

The local runner and the Ray actors call ``tag_batch`` on the same ``Loaded`` items, so their records
are the same; they differ only in who reads, decodes and schedules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wanwu.categories import Result
from wanwu.classifier import Classifier
from wanwu.engines import Engine
from wanwu.tagging.decode import Loaded
from wanwu.tagging.records import SCORE_DIGITS, ModelInfo, categories_version, make_record
from wanwu.tagging.vectors import embed


@dataclass(frozen=True)
class RankOptions:
    top_k: int = 5
    min_score: float = 0.0


def wanwu_version() -> str:
    from wanwu.version import __version__

    return __version__


def model_info(classifier: Classifier) -> ModelInfo:
    engine = classifier.engine
    return ModelInfo(classifier.model_name, classifier.weights_sha256, engine.precision, engine.name, wanwu_version(),
                     categories_version(classifier.source))


def record_for(info: ModelInfo, item: Loaded, predictions: list[dict] | None = None,
               error: tuple[str, str] | None = None, categories: list[dict] | None = None,
               unknown: bool | None = None, out_of_set: bool | None = None) -> dict:
    return make_record(info, item.rel, item.sha256, item.size, item.width, item.height, predictions,
                       error or item.error, categories, unknown, out_of_set)


def predict_pixels(classifier: Classifier, pixels: np.ndarray, options: RankOptions,
                   engine: Engine | None = None) -> list[dict]:
    """``(N, H, W, 3)`` crops -> per image, its ``predictions``, ``categories`` (scores to 6 digits) and ``unknown``."""
    return _predict(classifier, pixels, options, engine)[0]


def _predict(classifier: Classifier, pixels: np.ndarray, options: RankOptions,
             engine: Engine | None = None) -> tuple[list[dict], np.ndarray]:
    """``predict_pixels``'s entries and, from the same logits, the images' embeddings (``vectors.embed``)."""
    outputs = classifier.outputs(pixels, engine)
    results = classifier.results(outputs, options.top_k, options.min_score)
    return [_entries(r) for r in results], embed(classifier.class_logits(outputs))


def _entries(result: Result) -> dict:
    return {"predictions": [p.as_dict("both", SCORE_DIGITS) for p in result],
            "categories": [c.as_dict("both", SCORE_DIGITS) for c in result.categories], "unknown": result.unknown,
            "out_of_set": result.out_of_set}


def tag_batch(classifier: Classifier, items: Sequence[Loaded], info: ModelInfo, options: RankOptions,
              engine: Engine | None = None) -> list[dict]:
    """Records for ``items``, in order: the decoded ones through one engine call, the failed ones as errors.

    An engine failure fails the batch's images (``inference_failed``), not the run.
    """
    decoded = [item for item in items if item.decoded]
    by_item: dict[int, dict] = {}
    failure: tuple[str, str] | None = None
    if decoded:
        try:
            batch = np.stack([item.pixels for item in decoded])  # type: ignore[misc]
            entries, vectors = _predict(classifier, batch, options, engine)
            by_item = dict(zip(map(id, decoded), entries, strict=True))
            for item, vector in zip(decoded, vectors, strict=True):
                item.vector = vector
        except Exception as err:  # noqa: BLE001 - any engine failure becomes these images' error records
            failure = ("inference_failed", f"the engine failed on this batch: {type(err).__name__}: {err}")
    records = []
    for item in items:
        if item.decoded and failure is None:
            records.append(record_for(info, item, **by_item[id(item)]))
        else:
            records.append(record_for(info, item, error=failure if item.decoded else None))
    return records
