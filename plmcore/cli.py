"""Command line: python -m plmcore {train,evaluate,embed,predict,runs,models} --help."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from plmcore.errors import PlmcoreError

EPILOG = "Docs and examples: README.md. Set PLMCORE_DEBUG=1 to see tracebacks."


def _bar(desc: str):
    """A tqdm progress callback (done, total) for long work."""
    from tqdm.auto import tqdm

    state = {"bar": None}

    def update(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = tqdm(total=total, desc=desc, unit="seq", dynamic_ncols=True, leave=False)
        state["bar"].n = done
        state["bar"].refresh()
        if done >= total:
            state["bar"].close()

    return update


# --------------------------------------------------------------------------- train


def _class_file(item: str) -> tuple[str, str]:
    """CLASS=FILE, or FILE alone: its class is its name without a train/test prefix (test_Pos_ST.fasta: Pos_ST)."""
    from plmcore.data import class_of_file

    if "=" not in item:
        return class_of_file(item), item
    if not item.split("=", 1)[0].strip():
        raise argparse.ArgumentTypeError(f"{item!r}: write CLASS=FILE (e.g. pos=positives.fasta), or FILE alone")
    name, path = item.split("=", 1)
    return name.strip(), path


def _class_name(item: str) -> tuple[str, str]:
    if "=" not in item or not item.split("=", 1)[0].strip() or not item.split("=", 1)[1].strip():
        raise argparse.ArgumentTypeError(f"{item!r}: write CLASS=NAME, e.g. 1=phosphosite")
    name, shown = item.split("=", 1)
    return name.strip(), shown.strip()


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _flag(s: dict) -> str:
    return s["flag"] or "--" + s["name"].replace("_", "-")


def add_settings(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per setting of `cls`, generated from its declaration (plmcore.config.setting).

    Flags default to "not given", so that only what the user typed overrides a --config file.
    """
    from dataclasses import fields

    from plmcore.config import spec

    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(cls):
        s = spec(cls, f.name)
        if not s["cli"]:
            continue
        group = groups.get(s["group"]) or groups.setdefault(s["group"], parser.add_argument_group(s["group"]))
        default = s["default"]
        shown = s["none"] if default is None else ("on" if default is True else "off" if default is False
                                                   else ",".join(default) if isinstance(default, tuple) else default)
        help_text = s["help"]
        if shown not in ((), ""):
            help_text += f" (default: {shown})"
        kw: dict = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        if s["metavar"]:
            kw["metavar"] = s["metavar"]
        if s["values"] is not None:
            kw["choices"] = s["values"]
        elif s["type"] is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif s["type"] in (int, float):
            kw["type"] = s["type"]
            if s["optional"] and (s["lo"] or 0) > 0:
                kw["help"] += f"; 0: {s['none']}"
        elif f.name in ("class_files", "test_class_files"):
            kw.update(action="append", type=_class_file)
        elif f.name == "class_names":
            kw.update(action="append", type=_class_name)
        elif f.name == "train":
            kw["nargs"] = "+"
        elif s["type"] is tuple:
            kw["type"] = _comma_list
        group.add_argument(_flag(s), *s["aliases"], **kw)


_SPLIT_INPUTS = ("train", "class_files", "test", "test_class_files", "split_file", "label_source", "header",
                 "label_column", "id_columns", "sequence_column", "group_column", "position_column", "split_method", "val_fraction", "test_fraction", "split_seed",
                 "stratify", "identity_threshold")


def _add_train(sub, name: str = "train") -> None:
    from plmcore.config import DataSpec, TrainConfig

    helps = {
        "train": ("LoRA fine-tune a model on labelled sequences",
                  "Fine-tune a protein language model with LoRA. Writes a run directory (config, split, metrics, "
                  "checkpoints, test report, baselines, leakage report). `--config RUN/config.json` re-runs a run "
                  "exactly; flags given with it override its settings."),
        "cv": ("k-fold cross-validation of LoRA fine-tuning and the baselines",
               "Cross-validate: every fold trains the LoRA model and the baselines; reports mean +- sd and per-fold "
               "figures. Folds are stratified and grouped by protein when the ids carry UniProt accessions."),
    }
    p = sub.add_parser(name, help=helps[name][0], epilog=EPILOG, description=helps[name][1])
    add_settings(p, DataSpec)
    add_settings(p, TrainConfig)
    r = p.add_argument_group("run")
    r.add_argument("--config", metavar="JSON", help="start from this config.json (flags override it)")
    r.add_argument("--run-dir", help="run directory (default: a new folder under --runs-root)")
    r.add_argument("--runs-root", help="where new runs go (default: $PLMCORE_WORKSPACE/runs)")
    r.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    r.add_argument("--trust-remote-code", action="store_true",
                   help="let the model run its own code from the hub; only for repositories you trust. "
                        "Never read from a config file: give it each time")
    if name == "cv":
        r.add_argument("--folds", type=int, default=5, help="number of folds (default: 5)")
        r.add_argument("--no-group-by-protein", action="store_true", help="plain stratified folds")
        p.set_defaults(func=cmd_cv)
    else:
        p.set_defaults(func=cmd_train)


def config_from_args(args):
    """A TrainConfig from --config (or the defaults) with the settings given on the command line."""
    from dataclasses import fields

    from plmcore.config import DataSpec, TrainConfig, spec

    given = vars(args)
    base = TrainConfig.load(args.config).to_dict() if args.config else TrainConfig().to_dict()
    base["provenance"] = None  # the new run records its own

    def value(cls, name):
        v, s = given[name], spec(cls, name)
        if s["optional"] and s["type"] in (int, float) and v == 0 and (s["lo"] or 0) > 0:
            return None
        return v

    for f in fields(TrainConfig):
        if f.name in given and spec(TrainConfig, f.name)["cli"]:
            base[f.name] = value(TrainConfig, f.name)
    data = dict(base["data"])
    if data.get("split_file") and args.config and not Path(data["split_file"]).is_absolute():
        data["split_file"] = str((Path(args.config).resolve().parent / data["split_file"]).resolve())
    changed = [name for name in _SPLIT_INPUTS if name in given]
    if changed and "split_file" not in given:
        data["split_file"] = None  # the split changes: make it again from the files
    if "train" in given:
        data["class_files"] = ()
    if "class_files" in given:
        data["train"] = ()
    if "test" in given:
        data["test_class_files"] = ()
    if "test_class_files" in given:
        data["test"] = None
    for f in fields(DataSpec):
        if f.name in given and spec(DataSpec, f.name)["cli"]:
            data[f.name] = value(DataSpec, f.name)
    data["train"] = [str(Path(p).resolve()) for p in data.get("train") or []]
    for name in ("class_files", "test_class_files"):
        data[name] = [(c, str(Path(p).resolve())) for c, p in data.get(name) or []]
    for name in ("test", "split_file"):
        if name in given and data.get(name):
            data[name] = str(Path(data[name]).resolve())
    base["data"] = data
    return TrainConfig.from_dict(base)


def cmd_train(args) -> int:
    from plmcore.metrics import format_report
    from plmcore.runs import RunDir
    from plmcore.train import create_run, train_run

    run_dir = Path(args.run_dir) if args.run_dir else None
    has_data = bool(args.config) or any(k in vars(args) for k in ("train", "class_files", "split_file"))
    if run_dir and RunDir(run_dir).exists() and not has_data:
        run = RunDir(run_dir)  # an existing run: the app's worker, or --resume
    else:
        if args.resume:
            raise PlmcoreError(f"--resume needs an existing run directory; {run_dir} holds no run")
        config = config_from_args(args)
        run = create_run(config, run_dir=run_dir, root=args.runs_root)
        for w in run.read_status().get("warnings") or []:
            print(f"warning: {w}", file=sys.stderr)
    print(f"run directory: {run.path}", file=sys.stderr)
    status = train_run(run.path, resume=args.resume, trust_remote_code=args.trust_remote_code,
                       progress=sys.stderr.isatty() or bool(os.environ.get("PLMCORE_PROGRESS")))
    if status.get("state") == "cancelled":
        from plmcore.runs import resume_command

        print(f"cancelled; checkpoint kept. Resume: {resume_command(run.path)}")
        return 130
    report = run.report()
    if report:
        print(format_report(report, f"Test set ({run.name}, best checkpoint)"))
        from plmcore.assess import format_assessment

        print(format_assessment(run))
    print(f"run directory: {run.path}")
    return 0


def cmd_cv(args) -> int:
    from plmcore.cv import CVDir, create_cv, format_cv, run_cv
    from plmcore.runs import RunDir
    from plmcore.train import read_labelled

    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir and RunDir(run_dir).exists() and not (args.config or "train" in vars(args)
                                                    or "class_files" in vars(args)):
        cv = RunDir(run_dir)
    else:
        from plmcore import data as D

        config = config_from_args(args)
        table, _ = read_labelled(config.data)
        report = D.validate(table, max_length=config.max_length, too_long=config.too_long)
        report.raise_for_errors()
        for w in report.warnings:
            print(f"warning: {w.message}", file=sys.stderr)
        if config.data.test:
            print("note: cross-validation uses the training data only; --test is ignored", file=sys.stderr)
        cv = create_cv(config, report.table, folds=args.folds, grouped=not args.no_group_by_protein,
                       cv_dir=run_dir)
    print(f"cross-validation directory: {cv.path}", file=sys.stderr)
    status = run_cv(cv.path, progress=sys.stderr.isatty(), trust_remote_code=args.trust_remote_code)
    summary = CVDir(cv.path).results()
    if summary:
        print(format_cv(summary))
    print(f"state: {status.get('state')}; took {status.get('duration_s', '?')} s; directory {cv.path}")
    return 0 if status.get("state") == "finished" else 130


def _add_recipe(sub) -> None:
    from plmcore.recipes import TUTORIAL_DESCRIPTION, TUTORIAL_MODEL

    p = sub.add_parser("recipe", help="run a published protocol (the GTN tutorial) with baselines and leakage report",
                       epilog=EPILOG, description=TUTORIAL_DESCRIPTION)
    p.add_argument("name", choices=["tutorial"])
    p.add_argument("--model", default=TUTORIAL_MODEL, help=f"backbone (default {TUTORIAL_MODEL}); any preset works")
    p.add_argument("--train", help="train_sequences.fasta (default: download from Zenodo)")
    p.add_argument("--test", help="test_sequences.fasta (default: download from Zenodo)")
    p.add_argument("--run-dir")
    p.add_argument("--epochs", type=int, help="override the recipe's 20 epochs")
    p.add_argument("--device")
    p.set_defaults(func=cmd_recipe)


def cmd_recipe(args) -> int:
    from plmcore.assess import format_assessment
    from plmcore.metrics import format_report
    from plmcore.recipes import tutorial_config
    from plmcore.train import create_run, train_run

    train, test = args.train, args.test
    if not (train and test):
        from plmcore.datasets import fetch_tutorial_files
        from plmcore.runs import workspace

        files = fetch_tutorial_files(workspace() / "downloads" / "tutorial")
        train, test = str(files["train_sequences.fasta"]), str(files["test_sequences.fasta"])
    overrides = {k: v for k, v in (("epochs", args.epochs), ("device", args.device)) if v}
    config = tutorial_config(str(Path(train).resolve()), str(Path(test).resolve()), model=args.model, **overrides)
    run = create_run(config, run_dir=args.run_dir, created_by="recipe")
    print(f"run directory: {run.path}", file=sys.stderr)
    status = train_run(run.path, progress=sys.stderr.isatty())
    if status.get("state") != "finished":
        return 130
    print(format_report(run.report(), f"Tutorial recipe with {args.model}: test set"))
    print(format_assessment(run))
    return 0


def _add_leakage(sub) -> None:
    p = sub.add_parser("leakage", help="leakage report between a training and a test file", epilog=EPILOG)
    p.add_argument("--train", required=True, nargs="+")
    p.add_argument("--test", required=True)
    p.add_argument("--group-column", help="column naming the protein (default: accession parsed from ids)")
    p.set_defaults(func=cmd_leakage)


def cmd_leakage(args) -> int:
    import pandas as pd

    from plmcore import data as D
    from plmcore.leakage import format_leakage, leakage_report

    def load(path):
        return D.validate(D.read_table(path), require_labels=False).table

    train = pd.concat([load(p) for p in args.train], ignore_index=True)
    print(format_leakage(leakage_report(train, load(args.test), group_column=args.group_column)))
    return 0


# --------------------------------------------------------------------------- evaluate


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics table with 95%% bootstrap intervals for a run", epilog=EPILOG)
    p.add_argument("run", help="run directory")
    p.add_argument("--data", metavar="FILE", help="score this labelled file instead of the run's test split")
    p.add_argument("--split", default="test", choices=["test", "val"], help="which saved split to report")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the run's)")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    import pandas as pd

    from plmcore import data as D
    from plmcore import tasks
    from plmcore.assess import format_assessment, predictions_frame, report_from_predictions
    from plmcore.errors import RunError
    from plmcore.metrics import format_report
    from plmcore.predict import load_run
    from plmcore.runs import RunDir

    run = RunDir(args.run).require()
    lab = tasks.Labelling.from_dict(run.labels())
    decision = run.decision()
    if args.data:
        rep = D.validate(D.read_table(args.data), min_classes=1, task=lab.task)
        rep.raise_for_errors()
        table = rep.table
        if lab.task in ("classification", "residue"):
            seen = set("".join(table["label"])) - {tasks.NO_LABEL} if lab.task == "residue" else set(table["label"])
            unknown = sorted(seen - set(lab.classes))
            if unknown:
                raise PlmcoreError(f"{args.data}: labels {unknown} were not in the run's classes {lab.classes}")
        loaded = load_run(run)
        out = loaded.predict(table["sequence"].tolist(), _bar("scoring"))
        y = tasks.targets(lab, table["label"].tolist(), table["sequence"].tolist())
        df = predictions_frame(lab, table.reset_index(drop=True), y, out, decision)
        title = f"{args.data} scored by {run.name}"
    else:
        path = run.predictions_path(args.split)
        if not path.exists():
            raise RunError(f"{path} is missing: the run has not finished (state {run.status().get('state')}) "
                           f"or has no {args.split} split; use --data FILE to score a file")
        df = pd.read_csv(path, dtype={"label": str, "predicted": str, "id": str}, keep_default_na=False)
        title = f"{args.split} split of {run.name}"
    report = report_from_predictions(lab, decision, df, threshold=args.threshold, n_boot=args.n_boot)
    if args.json:
        from plmcore.runs import _jsonable

        print(json.dumps(_jsonable(report), indent=2))
    else:
        print(format_report(report, title))
        if not args.data and args.split == "test":
            print(format_assessment(run))
    return 0


# --------------------------------------------------------------------------- embed


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="per-sequence embeddings to HDF5 or .npy", epilog=EPILOG)
    p.add_argument("--model", help="base model: preset/hub id, folder or random:<preset>")
    p.add_argument("--run", help="a fine-tuned run directory (instead of --model)")
    p.add_argument("--input", required=True, help="FASTA/CSV/TSV of sequences (labels not needed)")
    p.add_argument("--output", required=True, help=".h5/.hdf5 (one dataset per id) or .npy (+ .ids.txt)")
    from plmcore.config import POOLINGS

    p.add_argument("--pooling", choices=tuple(POOLINGS), default=None,
                   help="default: mean for --model, the run's own pooling for --run")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="padded tokens per batch (default: plmcore.embed.MAX_TOKENS, 2048)")
    p.add_argument("--device", default="auto")
    p.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code from the hub")
    p.set_defaults(func=cmd_embed)


def cmd_embed(args) -> int:
    from plmcore import data as D
    from plmcore.embed import MAX_TOKENS, Embedder, save_embeddings
    from plmcore.models import load_backbone, set_cpu_threads
    from plmcore.predict import load_run

    if bool(args.model) == bool(args.run):
        raise PlmcoreError("give exactly one of --model (a base model) or --run (a fine-tuned run)")
    table = D.read_table(args.input, label_source="none")
    rep = D.validate(table, require_labels=False, min_classes=1)
    rep.raise_for_errors()
    set_cpu_threads()
    if args.run:
        embedder = Embedder.from_run(load_run(args.run, device=args.device, trust_remote_code=args.trust_remote_code),
                                     args.pooling)
    else:
        embedder = Embedder.from_backbone(load_backbone(args.model, trust_remote_code=args.trust_remote_code),
                                          args.pooling or "mean", args.device)
    X = embedder.embed(rep.table["sequence"].tolist(), max_tokens=args.max_tokens or MAX_TOKENS,
                       progress=_bar("embedding"))
    out = save_embeddings(args.output, rep.table["id"].tolist(), X, model_name=args.model or embedder.identity)
    print(f"wrote {X.shape[0]} embeddings of size {X.shape[1]} to {out}")
    return 0


# --------------------------------------------------------------------------- predict


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="score windows or scan whole proteins with a trained run", epilog=EPILOG,
                       description="Sequences as long as the training windows are scored directly; longer "
                                   "proteins are scanned at every candidate residue.")
    p.add_argument("run", help="run directory, a model folder exported with `export --format hub`, or the Hub id "
                               "of one")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="FASTA/CSV/TSV of sequences or whole proteins")
    src.add_argument("--sequence", action="append", help="a sequence (repeatable)")
    p.add_argument("--scan", action="store_true", help="scan every sequence, even window-length ones")
    p.add_argument("--residues", help="candidate residues to scan (default: those at the training windows' centre)")
    p.add_argument("--window", type=int, help="window length for scanning (default: the training length)")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the run's)")
    p.add_argument("--output", help="write the table as CSV here; with --input the file is scanned as a stream "
                                    "(any number of proteins, flat memory, resumable: see --restart)")
    p.add_argument("--restart", action="store_true",
                   help="with --input and --output: start over instead of resuming an interrupted scan")
    p.add_argument("--job", metavar="DIR", help=argparse.SUPPRESS)  # the app's background scan folder
    p.add_argument("--device", default="auto")
    p.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code from the hub")
    p.set_defaults(func=cmd_predict)


def _scan_bar():
    """A tqdm bar over records (fractional inside a chunk), with rate and ETA."""
    from tqdm.auto import tqdm

    state = {"bar": None}

    def update(done: float, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = tqdm(total=total, initial=int(done), desc="scanning", unit="protein",
                                dynamic_ncols=True, smoothing=0.1)
        state["bar"].n = int(done)
        state["bar"].refresh()

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


def cmd_scan(args) -> int:
    """predict --input FILE --output CSV: a streamed, resumable scan (plmcore.scan)."""
    from plmcore.predict import load_model
    from plmcore.scan import ScanSettings, scan_file

    settings = ScanSettings(residues=args.residues, window=args.window, threshold=args.threshold, scan=args.scan)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def load():
        return load_model(args.run, device=args.device, trust_remote_code=args.trust_remote_code)

    if args.job:
        return _scan_job(args, load, settings, warn)
    loaded = load()
    bar, close = _scan_bar()
    try:
        state = scan_file(loaded, args.input, args.output, settings, restart=args.restart, progress=bar, warn=warn)
    finally:
        close()
    print(f"wrote {state['rows']:,} rows for {state['records_done']:,} records to {args.output} "
          f"({state['seconds']:.0f} s this time)")
    return 0


def _scan_job(args, load, settings, warn) -> int:
    """The app's background scan: status.json with progress for the page, SIGTERM stops after a chunk."""
    import time

    from plmcore.runs import Cancelled, lifecycle
    from plmcore.scan import ScanDir, scan_file

    job = ScanDir(args.job).require()
    with lifecycle(job, kind="scan") as stop:
        last = {"t": 0.0}

        def progress(done: float, total: int) -> None:  # for the page's bar and ETA, every 2 s at most
            if time.time() - last["t"] >= 2:
                last["t"] = time.time()
                job.write_status("running", records_done=round(done, 1), records_total=total)

        def on_chunk(state: dict) -> None:
            job.write_status("running", records_done=state["records_done"], records_total=state["records_total"],
                             rows=state["rows"])

        start = 0 if args.restart else job.progress().get("records_done", 0)
        job.write_status("running", records_done=start, records_at_start=start, stage="loading the model")
        loaded = load()
        job.write_status("running", stage=None, started_at=time.time())
        state = scan_file(loaded, args.input, args.output, settings, restart=args.restart, warn=warn,
                          stop=lambda: stop["flag"], on_chunk=on_chunk, progress=progress)
        if not state["finished"]:
            raise Cancelled()
        job.write_status("finished", ended_at=time.time(), records_done=state["records_done"],
                         records_total=state["records_total"], rows=state["rows"])
    return 0 if job.read_status().get("state") == "finished" else 130


def cmd_predict(args) -> int:
    import pandas as pd

    from plmcore import data as D
    from plmcore.predict import clean_input, load_model, predict_table

    if args.input and args.output:
        return cmd_scan(args)
    if args.restart or args.job:
        raise PlmcoreError("--restart and --job apply to a scan of a file: give --input and --output")
    if args.input:
        table = D.read_table(args.input, label_source="none")
    else:
        table = D.parse_fasta_text("\n".join(args.sequence))
    table, warnings = clean_input(table)
    for w in warnings:
        print(f"warning: {w.message}", file=sys.stderr)
    loaded = load_model(args.run, device=args.device, trust_remote_code=args.trust_remote_code)
    frames = list(predict_table(loaded, table, scan=args.scan, residues=args.residues, window=args.window,
                                threshold=args.threshold, progress=_bar).items())
    with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 40):
        for kind, df in frames:
            print(f"# {kind} ({len(df)} rows)")
            print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.output:
        out = pd.concat([df.assign(kind=kind) for kind, df in frames], ignore_index=True)
        out.to_csv(args.output, index=False)
        print(f"wrote {len(out)} rows to {args.output}")
    return 0


# --------------------------------------------------------------------------- runs / models


def _add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list runs, show a run's status, cancel a run", epilog=EPILOG)
    rs = p.add_subparsers(dest="action", required=True)
    a = rs.add_parser("list", help="all runs under the runs root")
    a.add_argument("--root")
    a = rs.add_parser("status", help="status and progress of one run")
    a.add_argument("run")
    a = rs.add_parser("cancel", help="stop a running run (it keeps its last checkpoint)")
    a.add_argument("run")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    import pandas as pd

    from plmcore.runs import RunDir, cancel, list_runs

    if args.action == "list":
        rows = [r.summary() for r in list_runs(args.root)]
        if not rows:
            print("no runs yet")
            return 0
        df = pd.DataFrame(rows).drop(columns=["path"])
        print(df.to_string(index=False))
    elif args.action == "status":
        run = RunDir(args.run).require()
        print(json.dumps(run.status(), indent=2, default=str))
        tail = run.log_tail(5)
        if tail:
            print("--- last log lines\n" + tail)
    else:
        run = RunDir(args.run).require()
        print("stop requested" if cancel(run) else f"run is not active ({run.status().get('state')})")
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list model presets", epilog=EPILOG)
    p.set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from plmcore.models import PRESETS, cache_status

    print(f"{'id':<34}{'name':<32}{'family':<8}{'parameters':>12}  availability")
    for p in PRESETS.values():
        print(f"{p.id:<34}{p.display:<32}{p.family:<8}{p.parameters:>12,}  {cache_status(p.id)}")
    print("\nAny other hub id or a local folder also works; random:<id> builds the architecture with "
          "random weights (for trying the tool and measuring speed, not for results).")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="a run as a Hugging Face Hub model folder (or as this app's run archive)",
                       epilog=EPILOG, description="`--format hub` writes the PEFT adapter, the head, plmcore.json and a "
                       "model card (README.md): publish it with `hf upload USER/NAME DIR`. `--format zip` writes the "
                       "run archive that the Runs page imports.")
    p.add_argument("run", help="run directory")
    p.add_argument("--format", choices=["hub", "zip"], default="hub")
    p.add_argument("-o", "--output", required=True, help="the folder (hub) or .zip file (zip) to write")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from plmcore.runs import RunDir

    run = RunDir(args.run).require()
    if args.format == "hub":
        from plmcore.hub import export

        out = export(run, args.output)
        print(f"wrote the model folder {out}; publish it with: hf upload <user>/<name> {out}")
    else:
        from plmcore.archive import export_zip

        Path(args.output).write_bytes(export_zip(run))
        print(f"wrote the run archive {args.output}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="a one-file HTML report of a run (or of several runs on one split)",
                       epilog=EPILOG, description="A self-contained HTML file that opens offline in any browser: the "
                       "question, the answer with 95% intervals and the verdict, the evidence (baselines, leakage, "
                       "curves, calibration, training curves, embeddings) and how the run was made.")
    p.add_argument("runs", nargs="+", help="run directory (or several, to compare runs on one split), or a "
                                           "cross-validation directory")
    p.add_argument("-o", "--output", required=True, help="the .html file to write")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from plmcore.report import write_report

    out = write_report([Path(r) for r in args.runs], Path(args.output))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m plmcore", description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_evaluate, _add_embed, _add_predict, _add_runs, _add_models, _add_recipe,
                _add_leakage, _add_export, _add_report):
        add(sub)
    _add_train(sub, "cv")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(os.environ.get("PLMCORE_DEBUG"))
    try:
        return args.func(args)
    except PlmcoreError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        if debug:
            raise
        print(f"error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback unless asked
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with PLMCORE_DEBUG=1 for details)",
              file=sys.stderr)
        return 1
