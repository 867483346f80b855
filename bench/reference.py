"""The two baselines the project is compared against, written with plain library calls.

- `hf_reference_train`: the HF `transformers.Trainer` + peft LoRA recipe for sequence classification.
- `naive_embed`: a plain loop: fixed batch size, input order, HF tokenizer, padding to the longest.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path


def _esm_seq_cls(folder: Path, lora_r: int, lora_alpha: float, seed: int):
    from peft import LoraConfig, get_peft_model
    from transformers import EsmForSequenceClassification, set_seed

    set_seed(seed)  # the classifier head is initialised here, before Trainer seeds anything
    model = EsmForSequenceClassification.from_pretrained(str(folder), num_labels=2)
    cfg = LoraConfig(task_type="SEQ_CLS", r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0,
                     target_modules=["query", "key", "value", "dense"])
    return get_peft_model(model, cfg)


def build_reference_model(folder: Path, seed: int = 42, lora_r: int = 8, lora_alpha: float = 16):
    """EsmForSequenceClassification from the random-weight folder, wrapped with peft LoRA (SEQ_CLS)."""
    return _esm_seq_cls(folder, lora_r, lora_alpha, seed)


def _encode(tokenizer, sequences, labels=None) -> list[dict]:
    enc = tokenizer(list(sequences))
    rows = []
    for i in range(len(enc["input_ids"])):
        row = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]}
        if labels is not None:
            row["labels"] = int(labels[i])
        rows.append(row)
    return rows


def hf_reference_train(folder: Path, train_seqs, train_labels, test_seqs, test_labels, *, max_steps: int,
                       output_dir: Path, device: str = "cpu", mixed: str = "no", seed: int = 42) -> dict:
    """Train with transformers.Trainer; time the loop only (callback from train begin to train end)."""
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = build_reference_model(folder, seed)
    train_ds = _encode(tokenizer, train_seqs, train_labels)
    collator = DataCollatorWithPadding(tokenizer)

    kwargs = dict(
        output_dir=str(output_dir), per_device_train_batch_size=8, learning_rate=3e-4, max_steps=max_steps,
        lr_scheduler_type="linear", weight_decay=0.01, max_grad_norm=1.0, eval_strategy="no",
        save_strategy="no", logging_strategy="no", report_to=[], dataloader_num_workers=0,
        use_cpu=device == "cpu", seed=seed,
    )
    params = inspect.signature(TrainingArguments).parameters
    if "warmup_ratio" in params:
        kwargs["warmup_ratio"] = 0.1
    else:  # transformers >= 5: warmup_steps in [0, 1) is the ratio
        kwargs["warmup_steps"] = 0.1
    if mixed == "bf16":
        kwargs["bf16"] = True
    elif mixed == "fp16":
        kwargs["fp16"] = True
    args = TrainingArguments(**kwargs)

    marks: dict = {"steps": [], "windows": 0, "threads": None}

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            marks["begin"] = time.perf_counter()

        def on_step_begin(self, args, state, control, **kw):
            marks["threads"] = torch.get_num_threads()

        def on_step_end(self, args, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            marks["steps"].append(time.perf_counter())

        def on_train_end(self, args, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            marks["end"] = time.perf_counter()

    def count(module, args_, kwargs_):
        if module.training and kwargs_.get("input_ids") is not None:
            marks["windows"] += int(kwargs_["input_ids"].shape[0])
            marks["tokens_per_window"] = int(kwargs_["input_ids"].shape[1])

    hook = model.register_forward_pre_hook(count, with_kwargs=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, data_collator=collator, callbacks=[Timer()])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    hook.remove()
    loop = marks["end"] - marks["begin"]
    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    steps = marks["steps"]
    step_s = [b - a for a, b in zip([marks["begin"], *steps[:-1]], steps)]
    val_loss = reference_loss(model, tokenizer, test_seqs, test_labels, device)
    out = {
        "seconds": loop, "train_call_s": wall, "steps": len(steps), "windows": marks["windows"],
        "tokens_per_window": marks.get("tokens_per_window"), "threads": marks["threads"],
        "median_step_s": sorted(step_s[1:])[len(step_s[1:]) // 2] if len(step_s) > 1 else None,
        "val_loss": val_loss, "optimizer": type(inner).__name__ + (" fused" if inner.defaults.get("fused") else ""),
        "optim_arg": str(getattr(args.optim, "value", args.optim)), "fused_adamw": bool(inner.defaults.get("fused")),
        "device": str(trainer.args.device),
        "mixed_precision": mixed,
    }
    if device == "cuda":
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def reference_loss(model, tokenizer, seqs, labels, device: str = "cpu", batch_size: int = 64) -> float:
    """Mean cross-entropy of the model on (seqs, labels)."""
    import torch

    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(seqs), batch_size):
            enc = tokenizer(list(seqs[i:i + batch_size]), padding=True, return_tensors="pt").to(device)
            y = torch.tensor([int(v) for v in labels[i:i + batch_size]], device=device)
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()
            total += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
    return total / max(n, 1)


def naive_embed(model, tokenizer, sequences: list[str], batch_size: int = 32) -> tuple:
    """Mean of the residue tokens' last hidden states; batches in input order, padded to their longest.

    Returns (embeddings (n, hidden) float32, padded tokens computed).
    """
    import numpy as np
    import torch

    model.eval()
    out, computed = [], 0
    with torch.inference_mode():
        for i in range(0, len(sequences), batch_size):
            chunk = sequences[i:i + batch_size]
            enc = tokenizer(chunk, padding=True, return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            computed += int(enc["input_ids"].numel())
            for j, s in enumerate(chunk):
                out.append(hidden[j, 1:len(s) + 1].mean(0))  # skip <cls>; <eos> and padding follow
    return torch.stack(out).float().numpy().astype(np.float32), computed


# --------------------------------------------------------------------------- time to result


def read_labelled_fasta(path) -> tuple[list[str], list[int]]:
    """Sequences and LABEL=0/1 header tags of the tutorial's FASTA files (what its notebook reads)."""
    seqs, labels = [], []
    for block in Path(path).read_text().split(">")[1:]:
        head, *lines = block.splitlines()
        labels.append(int(head.rsplit("LABEL=", 1)[1].split()[0]))
        seqs.append("".join(lines).strip())
    return seqs, labels


def tutorial_reference(folder: Path, train_fasta, test_fasta, *, epochs: int, output_dir: Path,
                       seed: int = 42) -> dict:
    """The tutorial recipe at batch 8 with transformers.Trainer + peft, start to finish.

    80/20 stratified train/validation split of the training file (seed 42), LoRA r=4, alpha 8 on
    query/key/value/dense, lr 3e-4 linear without warm-up, `epochs` epochs at batch 8, evaluation
    on the validation split after every epoch (as the tutorial's TrainingArguments do), then the
    test file scored (accuracy, MCC, ROC-AUC).
    """
    import numpy as np
    from peft import LoraConfig, get_peft_model
    from sklearn.metrics import accuracy_score, matthews_corrcoef, roc_auc_score
    from sklearn.model_selection import train_test_split
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        EsmForSequenceClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    seqs, labels = read_labelled_fasta(train_fasta)
    test_seqs, test_labels = read_labelled_fasta(test_fasta)
    tr_s, va_s, tr_y, va_y = train_test_split(seqs, labels, test_size=0.2, random_state=seed, stratify=labels)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    set_seed(seed)
    model = EsmForSequenceClassification.from_pretrained(str(folder), num_labels=2)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["query", "key", "value", "dense"]))

    def metrics(pred):
        logits, y = pred
        p = np.exp(logits - logits.max(1, keepdims=True))
        p = p[:, 1] / p.sum(1)
        return {"accuracy": accuracy_score(y, logits.argmax(1)), "mcc": matthews_corrcoef(y, logits.argmax(1)),
                "roc_auc": roc_auc_score(y, p)}

    kwargs = dict(output_dir=str(output_dir), per_device_train_batch_size=8, per_device_eval_batch_size=8,
                  learning_rate=3e-4, num_train_epochs=epochs, lr_scheduler_type="linear", weight_decay=0.01,
                  eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to=[], seed=seed,
                  dataloader_num_workers=0, use_cpu=True)
    args = TrainingArguments(**kwargs)
    trainer = Trainer(model=model, args=args, train_dataset=_encode(tokenizer, tr_s, tr_y),
                      eval_dataset=_encode(tokenizer, va_s, va_y), data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=metrics)
    trainer.train()
    test = trainer.predict(_encode(tokenizer, test_seqs, test_labels))
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    return {"val_losses": evals, "test_metrics": {k: float(v) for k, v in test.metrics.items()},
            "n_train": len(tr_s), "n_val": len(va_s), "epochs": epochs}


if __name__ == "__main__":  # python -m bench.reference FOLDER TRAIN TEST EPOCHS OUTPUT_DIR RESULT_JSON
    import json
    import os
    import sys

    import torch

    if os.environ.get("PLMCORE_THREADS"):  # the harness's thread count, the same for every side
        torch.set_num_threads(int(os.environ["PLMCORE_THREADS"]))
    folder, train_fasta, test_fasta, n, out, result = sys.argv[1:7]
    res = tutorial_reference(Path(folder), train_fasta, test_fasta, epochs=int(n), output_dir=Path(out))
    Path(result).write_text(json.dumps(res, indent=1))
