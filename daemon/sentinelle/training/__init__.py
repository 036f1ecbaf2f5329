"""Training: the pretraining corpus, pretraining, and per-plant LoRA fine-tuning.

Kept apart from :mod:`sentinelle.forecast` (runtime inference: engine, model, tokenizer,
batcher, smoothing, adapter loading, baselines) because training draws on the evaluation
code (held-out lists, data sets, scores) and on heavy training-only libraries, and the
running daemon must import neither. Training imports the runtime model, never the reverse.
"""
