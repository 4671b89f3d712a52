"""Speculative decoding arithmetic: the tokens a round yields, its cost in target passes, the break-even acceptance.

A round proposes `gamma` tokens (a draft model, an EAGLE-style head or an n-gram prompt lookup) and verifies
them in one target pass over 1 + gamma tokens. With acceptance `alpha` per proposed token (independent), the
round yields E = (1 - alpha**(gamma + 1)) / (1 - alpha) tokens; it costs gamma * c + v target decode passes,
c being one draft step's time over a target pass's and v the verify pass's over a one-token pass (about 1
where a pass is memory- or launch-bound). Speculation pays when E > gamma * c + v.
"""

from __future__ import annotations

FORMULA = ("speedup = E / (gamma * c + v), E = (1 - alpha^(gamma + 1)) / (1 - alpha) tokens per round; c: a draft "
           "step's time over a target decode pass's, v: the verify pass's (1 + gamma tokens) over a one-token "
           "pass's; break-even alpha solves E = gamma * c + v")


def tokens_per_round(alpha: float, gamma: int) -> float:
    """Expected tokens a round yields: the accepted prefix of the proposals plus the target's own token."""
    return float(gamma + 1) if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)


def speedup(alpha: float, gamma: int, draft_cost: float, verify_cost: float = 1.0) -> float:
    """Decoding speed with speculation over without, at acceptance `alpha`."""
    return tokens_per_round(alpha, gamma) / (gamma * draft_cost + verify_cost)


def break_even_acceptance(gamma: int, draft_cost: float, verify_cost: float = 1.0) -> float | None:
    """The acceptance at which a round costs what it yields (bisection); None where no acceptance pays."""
    cost = gamma * draft_cost + verify_cost
    if cost >= gamma + 1:
        return None
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if tokens_per_round(mid, gamma) < cost else (low, mid)
    return round(high, 4)
