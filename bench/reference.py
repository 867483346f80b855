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
