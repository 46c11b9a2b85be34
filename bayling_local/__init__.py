"""bayling-local: BayLing, the multilingual LLM family from ICT/CAS, offline through llama.cpp."""

__version__ = "0.1.0"
