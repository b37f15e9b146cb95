"""Prometheus metrics per persona and model, registered once at import."""

from __future__ import annotations

from prometheus_client import Counter

_LABELS = ("agent", "provider", "model")

PROMPT_TOKENS = Counter("puppet_llm_prompt_tokens", "Prompt tokens sent to models.", _LABELS)
COMPLETION_TOKENS = Counter(
    "puppet_llm_completion_tokens", "Completion tokens models returned.", _LABELS
)
COST_USD = Counter("puppet_llm_cost_usd", "Dollars spent on models, at configured prices.", _LABELS)
CALLS = Counter(
    "puppet_llm_calls",
    "Service calls by outcome: ok, near_duplicate, unusable, invalid_output, budget_exhausted, "
    "not_configured, rejected, unavailable, deadline.",
    (*_LABELS, "outcome"),
)


def record(
    agent: str, provider: str, model: str, prompt: int, completion: int, cost: float
) -> None:
    """Add one call's spending."""
    PROMPT_TOKENS.labels(agent, provider, model).inc(prompt)
    COMPLETION_TOKENS.labels(agent, provider, model).inc(completion)
    COST_USD.labels(agent, provider, model).inc(cost)


def outcome(agent: str, provider: str, model: str, result: str) -> None:
    """Count one call with its outcome."""
    CALLS.labels(agent, provider, model, result).inc()
