"""What a federation runs: the strategy, the presets and where the coordinator keeps the model.

The plan travels as Flower's flat run config (strings and numbers), so the same ServerApp and
ClientApp read it in the simulation and in a real deployment (`flwr run --run-config`).
"""

import json
import math
from dataclasses import dataclass, field, replace

from ichfed.errors import IchfedError
from ichfed.federated.privacy import Privacy
from ichfed.model.config import ModelSpec, TrainSpec

STRATEGIES = ("cwt", "fedavg", "fedprox")


@dataclass(frozen=True)
class Plan:
    strategy: str = "cwt"
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    out: str = ""  # the coordinator's model folder
    sites: tuple[str, ...] = ()  # simulation only: site folders, one per simulated node
    num_sites: int = 2  # the run waits until this many sites are connected
    carry_optimizer: bool = False  # cwt: the Adam state travels with the weights
    proximal_mu: float = 0.01  # fedprox
    round_timeout: float = 24 * 3600.0  # seconds to wait for a round's replies
    device: str = "auto"  # the sites' device (a deployed site may override it)
    resume: bool = False
    privacy: Privacy | None = None  # site-level differential privacy (federated/privacy.py)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise IchfedError(f"unknown strategy '{self.strategy}'; choose from "
                              f"{', '.join(STRATEGIES)}")
        if self.privacy and self.carry_optimizer:
            raise IchfedError("--carry-optimizer with differential privacy: Adam's state "
                              "would leave each site without noise")

    def releases(self) -> int:
        """Updates one site releases in a run of the most rounds (what a target epsilon is
        spread over): every round with FedAvg and FedProx, its turns with cwt."""
        rounds = self.train.max_epochs
        return math.ceil(rounds / max(1, self.num_sites)) if self.strategy == "cwt" else rounds

    def resolved_privacy(self) -> "Plan":
        """With the noise multiplier a target epsilon asks for."""
        return replace(self, privacy=self.privacy and self.privacy.resolved(self.releases()))

    def to_run_config(self) -> dict[str, str | int | float | bool]:
        return {"strategy": self.strategy, "model": json.dumps(self.model.to_dict()),
                "train": json.dumps(self.train.to_dict()), "out": self.out,
                "sites": json.dumps(list(self.sites)), "num-sites": self.num_sites,
                "carry-optimizer": self.carry_optimizer, "proximal-mu": self.proximal_mu,
                "round-timeout": self.round_timeout, "device": self.device,
                "resume": self.resume,
                "privacy": json.dumps(self.privacy.to_dict() if self.privacy else None)}

    @classmethod
    def from_run_config(cls, config: dict) -> "Plan":
        c = dict(config)
        return cls(strategy=str(c["strategy"]), model=ModelSpec.from_dict(json.loads(c["model"])),
                   train=TrainSpec.from_dict(json.loads(c["train"])), out=str(c["out"]),
                   sites=tuple(json.loads(c.get("sites", "[]"))), num_sites=int(c["num-sites"]),
                   carry_optimizer=bool(c["carry-optimizer"]),
                   proximal_mu=float(c["proximal-mu"]), round_timeout=float(c["round-timeout"]),
                   device=str(c["device"]), resume=bool(c["resume"]),
                   privacy=_privacy(json.loads(c.get("privacy", "null"))))


def _privacy(data: dict | None) -> Privacy | None:
    return None if data is None else Privacy.from_dict(data)


def plan_from(context_config: dict, fallback: dict) -> Plan:
    """The run config Flower delivered, or the one the simulation baked into the app (Flower's
    in-process simulation delivers an empty run config), with the noise a target epsilon asks
    for (derived the same way at the coordinator and at the sites)."""
    return Plan.from_run_config(context_config if "strategy" in context_config else fallback
                                ).resolved_privacy()
