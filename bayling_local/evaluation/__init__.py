"""Evaluation the way the BayLing papers report it, on the user's own machine.

- :mod:`.scoring`: sacreBLEU BLEU (with the tokenizer each target language needs) and chrF++,
  COMET computed natively from Unbabel's checkpoints (:mod:`.comet`);
- :mod:`.runs`: translate a test set with the batch engine, score it, keep it in a run folder;
- :mod:`.bayling80`: answer BayLing-80 (single- and multi-turn) in BayLing's JSONL layout;
- :mod:`.kl`: next-token distributions of two models compared (KL divergence);
- :mod:`.quant`: the per-language report card of a model's quantizations;
- :mod:`.compare` and :mod:`.plots`: Markdown tables and PNG charts of several runs.

Scoring needs the ``eval`` extra (sacrebleu with the Japanese and Korean tokenizers,
matplotlib, torch and transformers for COMET): ``pip install 'bayling-local[eval]'``. Each
module imports it only when used.
"""
