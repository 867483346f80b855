"""The app's five steps, in order, and which of them this workspace has done (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOME_PAGE = "pages/home.py"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    page: str  # the page script, relative to the app folder
    icon: str
    what: str  # one sentence: what the user does there


STEPS = (
    Step("data", "Data", "pages/data.py", ":material/upload_file:",
         "Upload sequences with their labels (FASTA or a table), check them, and choose how to split them."),
    Step("train", "Train", "pages/train.py", ":material/model_training:",
         "Fine-tune a protein language model on your training split, with a live view of its progress."),
    Step("runs", "Runs & evaluation", "pages/runs.py", ":material/analytics:",
         "See the test scores with confidence intervals, compare with simple baselines, check for leakage."),
    Step("embeddings", "Embeddings", "pages/embeddings.py", ":material/scatter_plot:",
         "Look at how the model places your sequences before and after fine-tuning."),
    Step("predict", "Predict", "pages/predict.py", ":material/biotech:",
         "Score new sequences or scan whole proteins for candidate sites with a trained run."),
)


def step(key: str) -> Step:
    return next(s for s in STEPS if s.key == key)


def previous(key: str) -> Step | None:
    """The step before `key`, which an empty page points to."""
    keys = [s.key for s in STEPS]
    i = keys.index(key)
    return STEPS[i - 1] if i else None


def done(workspace: Path) -> dict[str, bool]:
    """Which steps this workspace has done, read from its files: a saved dataset with a saved split,
    a started run, a finished run, cached embeddings, and (for Predict) a finished run to predict with."""
    from plmcore.datasets import DatasetStore
    from plmcore.runs import list_runs

    datasets = DatasetStore(workspace / "datasets").list()
    runs = list_runs(workspace / "runs")
    finished = any(r.status().get("state") == "finished" for r in runs)
    cache = workspace / "cache" / "embeddings"
    return {
        "data": any(ds.meta.get("split") for ds in datasets),
        "train": bool(runs),
        "runs": finished,
        "embeddings": cache.is_dir() and any(cache.iterdir()),
        "predict": finished,
    }
