"""Strategies: Flower's FedAvg and FedProx as they are, and cyclic weight transfer (the paper)
as a small FedAvg subclass in the pattern of Flower's own FedXgbCyclic."""

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx

from ichfed.federated.plan import Plan
from ichfed.federated.privacy import SITE_WEIGHT, SiteLevelDp


class CyclicWeightTransfer(FedAvg):
    """One site per round, in a fixed order (by site name); the weights that site returns
    become the model, without averaging. Validation still asks every site."""

    def __init__(self, order: list[int], carry_optimizer: bool) -> None:
        n = len(order)
        super().__init__(min_train_nodes=1, min_evaluate_nodes=n, min_available_nodes=n)
        self.order, self.carry_optimizer = order, carry_optimizer
        self.optimizer: ArrayRecord | None = None

    def site_for(self, server_round: int) -> int:
        return self.order[(server_round - 1) % len(self.order)]

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        config["server-round"] = server_round
        content = RecordDict({"arrays": arrays, "config": config})
        if self.carry_optimizer and self.optimizer is not None:
            content["optimizer"] = self.optimizer
        return [Message(content=content, message_type=MessageType.TRAIN,
                        dst_node_id=self.site_for(server_round))]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = [r for r in replies if not r.has_error()]
        if not replies:
            return None, None
        content = replies[0].content
        if self.carry_optimizer and "optimizer" in content:
            self.optimizer = content["optimizer"]
        return content["arrays"], content["metrics"]


def build_strategy(plan: Plan, order: list[int]) -> FedAvg | SiteLevelDp:
    """The plan's strategy over these nodes (ordered by site name); FedAvg and FedProx in
    Flower's DP wrapper where the plan asks for privacy (cwt's is at the sites)."""
    n = len(order)
    if plan.strategy == "cwt":
        return CyclicWeightTransfer(order, plan.carry_optimizer)
    every = {"min_train_nodes": n, "min_evaluate_nodes": n, "min_available_nodes": n}
    # Flower's accountant needs equal weights: with noise, every site counts the same
    if plan.privacy and plan.privacy.noise_multiplier > 0:
        every["weighted_by_key"] = SITE_WEIGHT
    strategy = (FedProx(proximal_mu=plan.proximal_mu, **every) if plan.strategy == "fedprox"
                else FedAvg(**every))
    return SiteLevelDp(strategy, plan.privacy, n) if plan.privacy else strategy
