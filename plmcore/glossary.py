"""What each metric and baseline name means, in words: one place for the app's tooltips, the
report and the CLI (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    short: str  # as tables and axes show it
    words: str  # the name spelled out
    meaning: str  # what it measures and which way is better
    range: str = ""  # the values it can take, and what chance gives


_T: dict[str, Term] = {
    "mcc": Term("MCC", "Matthews correlation coefficient",
                "Agreement between predicted and true classes that stays honest when one class is rare; "
                "higher is better.", "−1 to 1; 0 is chance, 1 is perfect"),
    "roc_auc": Term("ROC-AUC", "area under the ROC curve",
                    "The chance that a random positive scores above a random negative; it does not depend "
                    "on the decision threshold. Higher is better.", "0 to 1; 0.5 is chance, 1 is perfect"),
    "pr_auc": Term("PR-AUC", "area under the precision-recall curve (average precision)",
                   "How precise the top-ranked predictions are across all recall levels; sensitive to how "
                   "rare positives are. Higher is better.", "0 to 1; chance equals the fraction of positives"),
    "accuracy": Term("Accuracy", "accuracy", "The fraction of items predicted correctly; misleading when one "
                     "class dominates (MCC is not). Higher is better.", "0 to 1"),
    "specificity": Term("Specificity", "specificity (true negative rate)",
                        "The fraction of true negatives called negative. Higher is better.", "0 to 1"),
    "sensitivity": Term("Sensitivity", "sensitivity (recall, true positive rate)",
                        "The fraction of true positives found. Higher is better.", "0 to 1"),
    "precision": Term("Precision", "precision (positive predictive value)",
                      "The fraction of items called positive that are positive. Higher is better.", "0 to 1"),
    "f1": Term("F1", "F1 score", "The harmonic mean of precision and sensitivity. Higher is better.", "0 to 1"),
    "brier": Term("Brier", "Brier score",
                  "The mean squared difference between the predicted probability and the true outcome (0 or 1): "
                  "accuracy and calibration together. Lower is better.",
                  "0 to 1; 0 is perfect, 0.25 is always saying 0.5"),
    "ece": Term("ECE", "expected calibration error",
                "How far predicted probabilities are from observed frequencies, averaged over probability bins: "
                "a 0.8 should come true 80% of the time. Lower is better.", "0 to 1; 0 is perfectly calibrated"),
    "spearman": Term("Spearman ρ", "Spearman rank correlation",
                     "How well the predicted values rank the items in their true order. Higher is better.",
                     "−1 to 1; 0 is no relation"),
    "pearson": Term("Pearson r", "Pearson correlation",
                    "How close predicted and true values are to a straight line. Higher is better.",
                    "−1 to 1; 0 is no linear relation"),
    "r2": Term("R²", "coefficient of determination",
               "The fraction of the target's variance the predictions explain. Higher is better.",
               "at most 1; 0 is predicting the mean, below 0 is worse than that"),
    "rmse": Term("RMSE", "root mean squared error",
                 "The typical size of a prediction error, in the target's units; large errors weigh more. "
                 "Lower is better.", "0 or more; 0 is perfect"),
    "mae": Term("MAE", "mean absolute error",
                "The average size of a prediction error, in the target's units. Lower is better.",
                "0 or more; 0 is perfect"),
    "loss": Term("Loss", "training loss",
                 "What the optimiser minimises (cross-entropy for classes, squared or Huber error for values). "
                 "Lower is better; a validation loss rising while the training loss falls means over-fitting.",
                 "0 or more"),
}
for _avg in ("macro", "micro"):
    for _m in ("roc_auc", "pr_auc", "f1", "mcc"):
        _base = _T[_m]
        how = ("averaged over labels, each label counting equally" if _avg == "macro"
               else "pooled over every (item, label) pair")
        _T[f"{_avg}_{_m}"] = Term(f"{_avg} {_base.short}", f"{_avg}-averaged {_base.words}",
                                  f"{_base.meaning} {how.capitalize()}.", _base.range)
TERMS: dict[str, Term] = _T  # keyed by metric id

# baseline models, by the start of their name (the part before " + ")
BASELINES: dict[str, str] = {
    "composition": "amino-acid composition of each sequence (20 fractions), no order or position",
    "one-hot": "the residue at each window position, one column per (position, residue)",
    "frozen embeddings": "the pretrained model's mean embedding, not fine-tuned",
}
MODELS: dict[str, str] = {
    "logistic regression": "a linear classifier, regularised; its strength chosen on the validation split",
    "ridge regression": "a linear regression, regularised; its strength chosen on the validation split",
}


def term(metric: str) -> Term | None:
    """The glossary entry of a metric id ('mcc', 'val_mcc', 'test_roc_auc' all work), or None."""
    key = metric
    for prefix in ("val_", "test_", "best_"):
        key = key.removeprefix(prefix)
    return TERMS.get(key)


def short(metric: str) -> str:
    """The metric's short name as tables show it (MCC, ROC-AUC), or the id itself."""
    t = term(metric)
    return t.short if t else metric


def explain(metric: str) -> str:
    """A tooltip: the name in words, what it measures, its range. Empty for an unknown metric."""
    t = term(metric)
    if t is None:
        return ""
    return f"**{t.short}**: {t.words}. {t.meaning}" + (f" Range: {t.range}." if t.range else "")


def explain_baseline(name: str) -> str:
    """What a baseline such as 'composition + logistic regression' is, in words."""
    features, _, model = name.partition(" + ")
    parts = [f"**{name}**:"]
    if features in BASELINES:
        parts.append(f"features: {BASELINES[features]};")
    for key, words in MODELS.items():
        if model.startswith(key):
            parts.append(f"model: {words}.")
    return " ".join(parts)
