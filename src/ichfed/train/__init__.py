"""One site's (or a pooled) training loop, engine-free: the Flower apps call the same code."""

from ichfed.train.fit import fit, train_sites
from ichfed.train.trainer import Trainer

__all__ = ["Trainer", "fit", "train_sites"]
