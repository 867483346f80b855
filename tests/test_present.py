"""Prediction results for people: words for counts, the best candidates, provenance in downloads."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from plmcore import present as P


def loaded(random_weights: bool = True, classes=("0", "1")):
    run = SimpleNamespace(title="centre pooling / r=8")
    return SimpleNamespace(run=run, name="20260101-000000-run", classes=list(classes), positive=classes[-1],
                           task="classification", config=SimpleNamespace(model="random:tiny-esm"),
                           backbone=SimpleNamespace(random_weights=random_weights))


def sites(probs):
    return pd.DataFrame({"protein_id": ["A"] * len(probs), "position": [10 * (i + 1) for i in range(len(probs))],
                         "residue": ["Y"] * len(probs), "probability": probs,
                         "predicted": [p >= 0.5 for p in probs]})


@pytest.mark.parametrize(("n", "noun", "expected"), [
    (1, "protein", "1 protein"), (2, "protein", "2 proteins"), (0, "site", "0 sites"),
    (1, "class", "1 class"), (3, "class", "3 classes"), (1204, "candidate site", "1,204 candidate sites"),
])
def test_plural(n, noun, expected):
    assert P.plural(n, noun) == expected


def test_top_candidates_are_the_best_first_and_named_by_residue_and_position():
    top = P.top_candidates(sites([0.1, 0.4, 0.05, 0.3]), 2)
    assert list(top["site"]) == ["Y20", "Y40"] and list(top["probability"]) == [0.4, 0.3]


def test_when_no_site_passes_the_summary_names_the_best_one():
    text = P.site_summary(sites([0.1, 0.4, 0.3]), 0.5)
    assert text.startswith("1 protein, 3 candidate sites: 0 sites at or above the threshold 0.50.")
    assert "The highest is Y20 of A (p = 0.40)" in text
    assert P.site_summary(sites([0.9, 0.4]), 0.5).endswith("1 site at or above the threshold 0.50.")


def test_every_download_row_says_which_run_model_and_threshold_made_it():
    out = P.with_provenance(sites([0.2, 0.7]), loaded(), 0.53)
    assert set(out["run"]) == {"centre pooling / r=8"} and set(out["model"]) == {"random:tiny-esm"}
    assert set(out["threshold"]) == {0.53} and out["random_weights"].all()
    assert P.download_name(loaded(), "site_scan") == "centre-pooling-r-8_site_scan_RANDOM-WEIGHTS.csv"
    assert P.download_name(loaded(random_weights=False), "site_scan") == "centre-pooling-r-8_site_scan.csv"


def test_class_probabilities_are_named_by_class():
    df = pd.DataFrame({"id": ["a"], "prob_0": [0.3], "prob_1": [0.7], "predicted": ["1"]})
    assert list(P.readable(loaded(), df).columns) == ["id", "P(class 0)", "P(class 1)", "predicted"]
    named = pd.DataFrame({"prob_kinase": [0.3], "prob_other": [0.7]})
    assert list(P.readable(loaded(classes=("kinase", "other")), named).columns) == ["P(kinase)", "P(other)"]


def test_given_labels_are_compared_with_the_predictions():
    df = pd.DataFrame({"id": ["a", "b", "c"], "predicted": ["1", "0", "1"]})
    out, text = P.compare_with_labels(loaded(), df, pd.Series(["1", "1", None]))
    assert list(out["agrees"]) == [True, False, None]
    assert text == "1 of 2 labelled sequences predicted as labelled."
