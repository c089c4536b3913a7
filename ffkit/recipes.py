"""How each tier trains: learning rate, force loss, weight decay, batch size and optimiser steps.

Kept apart from the models (ffkit.model.tiers) because they are choices of the trainer, each
with the measurement behind it. A config or flag overrides any of them; a model without a tier
gets the defaults.
"""

from typing import Optional


# Adam learning rate each tier trains best with (batch 8, rMD17 ethanol, equal wall time): larger
# models want smaller steps. Custom term mixes default to DEFAULT_LEARNING_RATE.
LEARNING_RATES = {"mm": 2e-2, "fast": 5e-3, "balanced": 2.5e-3, "accurate": 1.25e-3, "equivariant": 1.25e-3}
DEFAULT_LEARNING_RATE = 5e-3


def learning_rate(tier: Optional[str]) -> float:
    return LEARNING_RATES.get(tier or "", DEFAULT_LEARNING_RATE)


# Force penalty each tier trains with. Huber (quadratic below `huber_delta`, linear above) keeps
# pulling on the many small force errors the MAE counts once the large ones are gone: on rMD17
# ethanol, at equal 10-minute budgets, test F MAE went 18.6 -> 13.9 meV/Å (accurate) and
# 15.1 -> 13.0 (balanced); delta 0.005 gave 14.0; fast at its 8-minute budget 24.6 -> 17.4.
# Not measured on mm (errors of hundreds of meV/Å, set by its physics), which keeps (dF)^2.
FORCE_LOSSES = {"fast": "huber", "balanced": "huber", "accurate": "huber", "equivariant": "huber"}
DEFAULT_FORCE_LOSS = "mse"


def force_loss(tier: Optional[str]) -> str:
    return FORCE_LOSSES.get(tier or "", DEFAULT_FORCE_LOSS)


# Decoupled (AdamW) weight decay on the atomic networks' weight matrices. Without it `accurate`
# fits rMD17 ethanol's 950 training frames to 3.2 meV/Å but tests at 11.6; at its 28-minute
# budget (seed 0) decay 0.01 gave test F MAE 10.7, 0.05 gave 10.2 and 0.1 gave 10.4 (seed 1:
# 10.8), differences within the seed-to-seed spread. `balanced` at its 10 minutes with 0.1:
# 12.7 -> 11.4 (water 23.9 -> 22.5). `fast` (15 k parameters, less overfitted) at its 8 minutes
# with 0.1: 17.4 -> 18.2 (water 32.7 -> 32.6), so it trains without.
WEIGHT_DECAYS = {"balanced": 0.1, "accurate": 0.1, "equivariant": 0.1}
DEFAULT_WEIGHT_DECAY = 0.0


def weight_decay(tier: Optional[str]) -> float:
    return WEIGHT_DECAYS.get(tier or "", DEFAULT_WEIGHT_DECAY)


# Frames per optimiser step. `equivariant` on rMD17 ethanol, 115 minutes on one core each: batch 4
# beat batch 8 (test F MAE 7.50 against 7.65; twice the steps per epoch) and batch 2 (7.58).
BATCH_SIZES = {"equivariant": 4}
DEFAULT_BATCH_SIZE = 8


def batch_size(tier: Optional[str]) -> int:
    return BATCH_SIZES.get(tier or "", DEFAULT_BATCH_SIZE)


# Optimiser steps each tier trains for when no --epochs is given: what it reached in its wall-time
# budget on rMD17 ethanol (epochs x 119 batches of 8; mm 124 x 60 of 16; equivariant 620 x 238 of 4).
# A budget in steps, not minutes, gives a larger molecule or data set as many updates as ethanol got,
# where a fixed time gave a 21-atom molecule a fifth of the epochs and a schedule that ended on a plateau.
TRAINING_STEPS = {"mm": 7_500, "fast": 54_000, "balanced": 61_000, "accurate": 93_000, "equivariant": 147_560}
DEFAULT_TRAINING_STEPS = 50_000


def training_steps(tier: Optional[str]) -> int:
    return TRAINING_STEPS.get(tier or "", DEFAULT_TRAINING_STEPS)
