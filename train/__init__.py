"""BayLing's recipe for training: instruction data, instruction tuning, export to GGUF.

``bayling-train data`` builds BayLing-style instruction data from parallel text,
``bayling-train sft`` tunes a LLaMA-family model on it (full or LoRA, one GPU or many, CPU for
tests), ``bayling-train export`` turns a run into a GGUF the app runs, and
``bayling-train demo`` rebuilds the small demo model that ships inside bayling-local.
Prompts are rendered by :mod:`bayling_local.prompts`, languages come from
:mod:`bayling_local.languages`: one source of truth for both the app and its training.
"""
