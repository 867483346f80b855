"""A trained run as a model folder for the Hugging Face Hub, and loading one back.

The folder holds what the ecosystem expects and nothing that runs code::

    adapter_config.json, adapter_model.safetensors   the PEFT adapter (base_model_name_or_path: the base model)
    head.safetensors                                  the head on top of the pooled (or per-residue) states
    plmcore.json                                      task, classes or labels, window length and centre
                                                      residues, decision threshold(s), and the settings
                                                      that rebuild the model
    README.md                                         the model card: metadata, intended use, data and
                                                      split, test metrics with intervals, baselines,
                                                      leakage as limitations, how to load it

`hf upload <user>/<name> DIR` publishes it; `plmcore.predict.load_model` (and `python -m plmcore
predict`, and the Predict page) load it back from the folder or from its Hub id.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from plmcore import tasks
from plmcore.errors import ModelLoadError, RunError
from plmcore.runs import RunDir, check_labels, write_json

HUB_FILES = ("adapter_config.json", "adapter_model.safetensors", "head.safetensors", "plmcore.json", "README.md")
FORMAT = "plmcore-hub-model/1"
# our metric names as the Hub's metadata spells them (the `evaluate` library's ids)
HUB_METRICS = {"mcc": "matthews_correlation", "roc_auc": "roc_auc", "pr_auc": "average_precision",
               "accuracy": "accuracy", "f1": "f1", "precision": "precision", "sensitivity": "recall",
               "spearman": "spearmanr", "pearson": "pearsonr", "r2": "r_squared", "rmse": "rmse", "mae": "mae",
               "macro_roc_auc": "roc_auc", "macro_f1": "f1", "micro_f1": "f1", "macro_pr_auc": "average_precision"}
PIPELINE_TAGS = {"classification": "text-classification", "regression": "text-classification",
                 "multilabel": "text-classification", "residue": "token-classification"}


# --------------------------------------------------------------------------- export


def export(run: RunDir, out_dir: Path | str) -> Path:
    """Write the Hub model folder of a finished run to `out_dir` (created; must be empty or absent)."""
    from plmcore.archive import portable_config

    run.require()
    if run.status().get("state") != "finished":
        raise RunError(f"run {run.name} is {run.status().get('state')}; only a finished run can be exported")
    best = run.best_dir
    if not (best / "adapter" / "adapter_model.safetensors").exists():
        raise RunError(f"run {run.name} has no saved adapter in {best}; it cannot be exported")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; give a new folder for the model")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(best / "adapter" / name, out / name)
    shutil.copyfile(best / "head.safetensors", out / "head.safetensors")
    config = portable_config(run)
    config.pop("provenance", None)
    info = {"format": FORMAT, "run": run.name, "config": config, "labels": run.labels(),
            "decision": run.decision(), "provenance": _short_provenance(run)}
    write_json(out / "plmcore.json", info)
    (out / "README.md").write_text(model_card(run, info))
    return out


def _short_provenance(run: RunDir) -> dict:
    prov = run.config().provenance or {}
    model = prov.get("model") or {}
    split = (prov.get("data") or {}).get("split") or {}
    return {"model": {k: model.get(k) for k in ("source", "kind", "revision")},
            "split": {k: split.get(k) for k in ("split_method", "val_fraction", "split_seed", "counts", "sha256")},
            "seeds": prov.get("seeds"), "software": prov.get("software")}


def model_card(run: RunDir, info: dict) -> str:
    """The model card (README.md): Hub metadata, then what the model is, how well it does and its limits."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config, labels = info["config"], info["labels"]
    task = labels.get("task", "classification")
    report = run.report() or {}
    comparison = run.comparison() or {}
    leak = run.leakage() or {}
    base = config["model"]
    random_weights = base.startswith("random:")
    metrics = [m for m in report.get("metrics", {}) if m in HUB_METRICS][:6]
    dataset = (config.get("data") or {}).get("dataset") or "custom"
    results = [EvalResult(task_type=PIPELINE_TAGS[task], dataset_type="custom", dataset_name=str(dataset),
                          dataset_split="test", metric_type=HUB_METRICS[m], metric_name=tasks.metric_words(m),
                          metric_value=float(report["metrics"][m]))
               for m in metrics if report["metrics"].get(m) is not None]
    data = ModelCardData(
        library_name="peft", base_model=None if random_weights else base, pipeline_tag=PIPELINE_TAGS[task],
        tags=["plmcore", "lora", "protein", "protein-language-model", task] + (["random-weights"] if random_weights
                                                                               else []),
        metrics=sorted({HUB_METRICS[m] for m in metrics}) or None, model_name=info["run"],
        eval_results=results or None,
    )
    lines = [f"# {info['run']}", ""]
    if random_weights:
        lines += ["> **Random weights.** The base model was built with random weights (for trying the tool and "
                  "measuring speed). Its numbers say nothing about how a pretrained model predicts; do not use it "
                  "for results.", ""]
    what = {"classification": f"one of the classes {', '.join(labels['classes'])} for each sequence",
            "regression": "a number for each sequence",
            "multilabel": f"which of the labels {', '.join(labels['classes'])} apply to each sequence",
            "residue": f"a class ({', '.join(labels['classes'])}) for "
                       + (f"each {labels['residues']} residue" if labels.get("residues") else "every residue")}[task]
    lines += [f"A LoRA adapter for `{base}`, fine-tuned with plmcore to predict {what}."]
    if labels.get("window_length"):
        lines += [f"It was trained on {labels['window_length']}-residue windows centred on "
                  f"{', '.join(labels.get('center_residues') or [])}; whole proteins are scored window by window."]
    lines += ["", "## Intended use", "",
              "Research use: ranking and triaging candidates for experiments. It is not validated for clinical or "
              "diagnostic use, and its scores are only as good as the test below says, on data like its "
              "training data.", "", "## Data and split", ""]
    data_spec = config.get("data", {})
    split = (info.get("provenance") or {}).get("split") or {}
    counts = split.get("counts") or {}
    lines += [f"- Dataset: {data_spec.get('dataset') or ', '.join(data_spec.get('train') or []) or 'not recorded'}",
              f"- Split: {data_spec.get('split_method')}, validation fraction {data_spec.get('val_fraction')}, "
              f"seed {data_spec.get('split_seed')}; {counts.get('train', '?')} training, {counts.get('val', '?')} "
              f"validation and {counts.get('test', '?')} test records.", ""]
    lines += ["## Test metrics", ""]
    if report:
        lines += [f"{_items(report)}; 95% bootstrap intervals ({report.get('n_boot')} resamples).", "",
                  "| metric | value | 95% interval |", "|---|---|---|"]
        for m in metrics:
            lo, hi = (report.get("ci95") or {}).get(m) or (None, None)
            value = report["metrics"][m]
            lines.append(f"| {tasks.metric_words(m)} | {_num(value)} | {_num(lo)} to {_num(hi)} |")
        lines.append("")
    else:
        lines += ["No test split: there are no test metrics.", ""]
    entries = comparison.get("comparisons") or {}
    if entries:
        lines += ["### Against simple baselines on the same split", "",
                  f"Verdict: {comparison.get('verdict')}", "", "| baseline | decision metric | baseline value |"
                  " fine-tuned | difference (95% CI) |", "|---|---|---|---|---|"]
        for name, c in entries.items():
            m = c["metrics"][c["decision_metric"]]
            lo, hi = m["ci95"]
            lines.append(f"| {name} | {tasks.metric_words(c['decision_metric'])} | {_num(m['b'])} | {_num(m['a'])} | "
                         f"{_num(m['difference'])} ({_num(lo)} to {_num(hi)}) |")
        lines.append("")
    lines += ["## Limitations", ""]
    if leak.get("warnings"):
        lines += ["The test split shares material with the training data, so the test metrics are likely "
                  "optimistic for new proteins:", ""] + [f"- {w}" for w in leak["warnings"]] + [""]
    elif leak:
        lines += ["The leakage check found no test item that shares a protein with, overlaps, or closely resembles "
                  "a training item.", ""]
    lines += [f"- Trained and tested on {counts.get('train', '?')} + {counts.get('test', '?')} records: small test "
              "sets give wide intervals; read the intervals, not just the values.", ""]
    lines += ["## How to load it", "", "With plmcore (`pip install` its requirements; the base model is downloaded "
              "from the Hub):", "", "```python", "from plmcore.predict import load_model",
              f"model = load_model(\"{info['run']}\")  # this folder, or its Hub id once uploaded",
              "print(model.predict([\"MKTAYIAKQRQISFVKSHFSRQ\"]))", "```", "",
              "With peft alone: `PeftModel.from_pretrained(AutoModel.from_pretrained(base), this_folder)` gives "
              "the adapted encoder; `head.safetensors` holds the head (dense → tanh → out) on the "
              f"{config.get('pooling')}-pooled states, and `plmcore.json` the classes and threshold.", "",
              "## How it was made", "",
              f"- Base model: `{base}` ({((info.get('provenance') or {}).get('model') or {}).get('kind', '')}, "
              f"revision {((info.get('provenance') or {}).get('model') or {}).get('revision') or 'not recorded'})",
              f"- LoRA rank {config.get('lora_r')}, alpha {config.get('lora_alpha')}, targets "
              f"{', '.join(config.get('lora_targets') or []) or 'the family defaults'}; pooling {config.get('pooling')}",
              f"- {config.get('epochs')} epochs, learning rate {config.get('learning_rate')}, batch "
              f"{config.get('batch_size')} x {config.get('grad_accum')}, seed {config.get('seed')}",
              f"- Software: {', '.join(f'{k} {v}' for k, v in ((info.get('provenance') or {}).get('software') or {}).items() if k != 'platform')}",
              ""]
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines))
    return str(card)


def _items(report: dict) -> str:
    if report.get("n_proteins"):
        return f"{report['n']} test residues of {report['n_proteins']} proteins"
    return f"{report['n']} test sequences"


def _num(value) -> str:
    return "" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- loading


def is_model_folder(path: Path | str) -> bool:
    p = Path(path)
    return (p / "plmcore.json").is_file() and (p / "adapter_model.safetensors").is_file()


def fetch(source: str) -> Path:
    """A local model folder: `source` itself, or the files of the Hub repository `source` (cached)."""
    if is_model_folder(source):
        return Path(source)
    if Path(source).expanduser().exists():
        raise ModelLoadError(f"{source} is neither a run directory nor a model folder exported by plmcore "
                             "(it has no plmcore.json and adapter_model.safetensors)")
    from huggingface_hub import snapshot_download

    from plmcore.models import _load_error

    try:
        path = snapshot_download(repo_id=source, allow_patterns=list(HUB_FILES))  # never code, never pickles
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, bad id: one clear message
        raise _load_error(source, exc) from exc
    if not is_model_folder(path):
        raise ModelLoadError(f"The Hub repository {source} is not a model exported by plmcore (no plmcore.json or "
                             "adapter_model.safetensors).")
    return Path(path)


def read_info(folder: Path) -> dict:
    """plmcore.json of a model folder, checked: it may come from anyone on the Hub."""
    from plmcore.config import TrainConfig

    try:
        info = json.loads((folder / "plmcore.json").read_text())
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise ValueError(f"format is {info.get('format') if isinstance(info, dict) else type(info).__name__}")
        info["config"] = TrainConfig.from_dict(info["config"])  # drops trust_remote_code, validates the rest
        info["labels"] = check_labels(info["labels"], "plmcore.json labels")
        decision = info.get("decision") or {}
        if not isinstance(decision, dict):
            raise ValueError("decision is not an object")
        th = decision.get("threshold")
        ths = decision.get("thresholds")
        if th is not None and not isinstance(th, (int, float)):
            raise ValueError("threshold is not a number")
        if ths is not None and not (isinstance(ths, list) and all(isinstance(t, (int, float)) for t in ths)):
            raise ValueError("thresholds is not a list of numbers")
        info["decision"] = {k: decision.get(k) for k in ("threshold", "thresholds", "temperature", "objective")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{folder / 'plmcore.json'} does not describe a plmcore model ({exc}); export the run "
                             "again with `python -m plmcore export RUN --format hub`") from exc
    return info


def load(source: Path | str, *, device: str = "auto", trust_remote_code: bool = False):
    """A LoadedRun from a model folder or a Hub id of one (see plmcore.predict.load_model)."""
    from plmcore.predict import build_loaded

    folder = fetch(str(source))
    info = read_info(folder)
    lab = tasks.Labelling.from_dict(info["labels"])
    return build_loaded(info["config"], lab, info["decision"], folder, adapter_dir=folder, device=device,
                        trust_remote_code=trust_remote_code, source=folder)


def zip_folder(folder: Path) -> bytes:
    """The model folder as a zip, for a download button."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in HUB_FILES:
            if (folder / name).exists():
                zf.write(folder / name, f"{folder.name}/{name}")
    return buf.getvalue()


def export_zip(run: RunDir) -> bytes:
    """export() into a temporary folder, zipped (the Runs page's download)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="plm-hub-") as tmp:
            return zip_folder(export(run, Path(tmp) / f"{run.name}-model"))
