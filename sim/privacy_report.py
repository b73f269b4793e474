"""What a run reports about differential privacy: epsilon per peer in summary.json, the largest
so far in rounds.jsonl (``dp_epsilon``), and the line ``rumor sim`` prints at the end.

The accounting is :mod:`protocol.privacy_accounting`'s: replace-one-peer's-dataset neighbours
(sensitivity 2C), Renyi DP of the Gaussian mechanism composed over the rounds each peer trained,
converted to (epsilon, delta) by Canonne, Kamath and Steinke's conversion.
"""

from __future__ import annotations

from protocol.privacy_accounting import REPLACE, PrivacyAccountant
from protocol.privacy_params import DpParams

__all__ = ["ACCOUNTING", "privacy_line", "privacy_summary"]

ACCOUNTING = (
    "local DP per peer (its whole dataset replaced, L2 sensitivity 2*clip); Renyi DP of the "
    "Gaussian mechanism over the rounds it trained, converted by Canonne-Kamath-Steinke 2020"
)


def privacy_summary(params: DpParams, accountant: PrivacyAccountant) -> dict[str, object]:
    """summary.json's ``privacy`` object.

    >>> import numpy as np
    >>> acc = PrivacyAccountant(2, sigma=4.0, delta=1e-5)
    >>> acc.record(np.array([True, False]))
    >>> s = privacy_summary(DpParams(clip=1, sigma=4), acc)
    >>> s["rounds_trained"], s["epsilon"][1], s["epsilon_max"] == s["epsilon"][0]
    ([1, 0], 0.0, True)
    """
    epsilons = accountant.epsilons()
    return params.to_dict() | {
        "sensitivity": REPLACE * params.clip,
        "accounting": ACCOUNTING,
        "epsilon_max": max(epsilons, default=0.0),
        "epsilon": epsilons,
        "rounds_trained": accountant.rounds.tolist(),
    }


def privacy_line(privacy: object) -> str | None:
    """The line ``rumor sim`` prints for summary.json's ``privacy`` (None without DP).

    >>> privacy_line({"epsilon_max": 3.25, "delta": 1e-5, "clip": 1.0, "sigma": 2.0,
    ...               "epsilon": [3.25, 3.0]})
    'differential privacy: epsilon <= 3.25 at delta 1e-05 for each peer (max of 2; clip 1, sigma 2)'
    """
    if not isinstance(privacy, dict):
        return None
    return (
        f"differential privacy: epsilon <= {privacy['epsilon_max']:.3g} at delta "
        f"{privacy['delta']:g} for each peer (max of {len(privacy['epsilon'])}; "
        f"clip {privacy['clip']:g}, sigma {privacy['sigma']:g})"
    )
