"""The coordinator's side: a Flower ServerApp that runs the plan's strategy round by round,
keeps the best global model, and writes a model folder `ichfed predict` reads.

Flower's `Strategy.start` runs a fixed number of rounds; the paper stops early on the sites'
validation loss, so the round loop lives here and calls the strategy's own configure/aggregate
steps over Flower's Grid.
"""

import time
from collections.abc import Callable
from dataclasses import replace
from logging import INFO, WARNING
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.inflatable.inflatable_utils import ObjectPushError

from ichfed.errors import IchfedError
from ichfed.federated.payload import pack, payload_bytes, problem_with, unpack
from ichfed.federated.plan import Plan, plan_from
from ichfed.federated.privacy import epsilon_spent
from ichfed.federated.pulls import shorten
from ichfed.federated.strategies import build_strategy
from ichfed.model.bundle import load_weights, save_config, save_weights
from ichfed.model.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from ichfed.model.postprocess import LesionRule
from ichfed.report.tables import write_csv
from ichfed.train.calibrate import RULES, choose, rule_key
from ichfed.train.stopping import record, stop_reason
from ichfed.train.trainer import kept_weights, training_trainer

LOG = "federation.csv"
RETRIES = 3  # a site that dropped out is asked again this many times
RETRY_WAIT_S = 5.0
REJOIN_S = 600.0  # how long a site that dropped out has to come back before it is asked again
PULL_WAIT_S = (0.05, 0.25)  # the first and the longest wait between two pulls for replies


def initial_weights(plan: Plan) -> dict:
    """The same initial network `ichfed train` builds for this seed, as a travelling state."""
    return training_trainer(plan.model, plan.train, torch.device("cpu")).travelling_state()


def discover_sites(grid: Grid, plan: Plan) -> tuple[dict[int, str], list[tuple[float, float]]]:
    """Wait for the plan's number of sites, then ask each for its name (the strategies order
    sites by name, since node ids change from run to run), its median pixel size and slice
    thickness, and for a typed model its label set (one site must label types)."""
    deadline = time.time() + plan.round_timeout
    while len(nodes := list(grid.get_node_ids())) < plan.num_sites:
        if time.time() > deadline:
            raise IchfedError(f"only {len(nodes)} of {plan.num_sites} sites connected")
        time.sleep(1.0)
    asks = [Message(RecordDict({"config": ConfigRecord()}), dst_node_id=node,
                    message_type=MessageType.QUERY) for node in nodes]
    names, pixels, labels = {}, [], set()
    for reply in send_and_receive(grid, asks, plan.round_timeout):
        if reply.has_error():
            raise IchfedError(f"a site failed to start: {reply.error.reason}")
        site = reply.content["site"]
        names[reply.metadata.src_node_id] = str(site["name"])
        pixels.append((float(site["inplane-mm"]), float(site["slice-mm"])))
        labels.add(str(site["labels"]))
    if len(set(names.values())) < len(names):
        raise IchfedError(f"two sites share a name: {sorted(names.values())}")
    if plan.model.typed and "types" not in labels:  # as `train_sites` refuses it
        raise IchfedError(f"--set labels=types: no site of {', '.join(sorted(names.values()))} "
                          "labels bleed types (site.json \"labels\": \"types\"); a typed "
                          "model needs at least one")
    return names, pixels


def _exchange(grid: Grid, build: Callable[[], list[Message]],
              screen: Callable[[list[Message]], list[Message]], plan: Plan,
              names: dict[int, str], all_needed: bool) -> tuple[list[Message], list[Message]]:
    """Send the messages `build` makes and screen the replies. When a site's reply is missing
    (it dropped out), wait until it is connected again (at most REJOIN_S) and ask it again, up
    to RETRIES times; the round's other replies are kept. Returns the messages sent and the
    usable replies."""
    sent = build()
    good = screen(_send(grid, sent, plan.round_timeout))
    for _ in range(RETRIES):
        answered = {r.metadata.src_node_id for r in good}
        missing = [m for m in sent if m.metadata.dst_node_id not in answered]
        if not missing or (good and not all_needed):
            break
        log(WARNING, "ichfed: waiting for %s to answer again",
            ", ".join(names.get(m.metadata.dst_node_id, "?") for m in missing))
        time.sleep(RETRY_WAIT_S)
        _wait_until_connected(grid, {m.metadata.dst_node_id for m in missing}, REJOIN_S)
        again = [m for m in build() if m.metadata.dst_node_id not in answered]
        good += screen(_send(grid, again, plan.round_timeout))
    return sent, good


def _wait_until_connected(grid: Grid, nodes: set[int], seconds: float) -> None:
    """Until every one of `nodes` is connected (a restarted site takes its registered node id
    again once it has started, which on a busy machine can take longer than the retry wait)
    or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not nodes <= set(grid.get_node_ids()) and time.monotonic() < deadline:
        time.sleep(RETRY_WAIT_S / 5)


def send_and_receive(grid: Grid, messages: list[Message], timeout: float) -> list[Message]:
    """Push the messages, then pull their replies until all are in or `timeout` (s) passes.

    What Flower's `grid.send_and_receive` does, without its fixed 3 s sleep between pulls
    (a deployed round waited up to 3 s after each exchange for nothing): the first pulls
    follow each other within 50 ms, slowing to four a second for long rounds."""
    ids = set(grid.push_messages(messages))
    replies: list[Message] = []
    deadline, wait = time.monotonic() + timeout, PULL_WAIT_S[0]
    while ids:
        got = list(grid.pull_messages(ids))
        replies += got
        ids -= {reply.metadata.reply_to_message_id for reply in got}
        if not ids or time.monotonic() > deadline:
            break
        time.sleep(wait)
        wait = min(1.5 * wait, PULL_WAIT_S[1])
    return replies


def _send(grid: Grid, messages: list[Message], timeout: float) -> list[Message]:
    """`send_and_receive`. When the SuperLink refuses to store a message's content (Flower's
    ObjectPushError, seen when a site restarts while a round's messages are pushed), the
    messages count as unanswered, so `_exchange` asks again with fresh messages."""
    try:
        return send_and_receive(grid, messages, timeout)
    except ObjectPushError as exc:
        log(WARNING, "ichfed: %s; asking again", exc)
        return []


def _why(reason: str) -> str:
    """A site's failure in one line: its ClientApp's own message where Flower wrapped it (in
    a traceback in the simulation, as `<class ...>:<'message'>` from a deployed site)."""
    text = reason.strip().removesuffix("'>")
    text = text.rsplit("Message: ", 1)[-1] if "Message: " in text else text.rsplit(":<'", 1)[-1]
    return " ".join(text.split())[-300:]


def _screen(replies: list[Message], model: ArrayRecord | None, names: dict[int, str],
            failures: dict[str, str] | None = None) -> list[Message]:
    """Drop failed replies (their reasons into `failures`, by site). A training reply whose
    weights are missing, malformed or not finite loses its update (logged) and keeps its
    validation, which was of the model the site received."""
    good = []
    for reply in replies:
        site = names.get(reply.metadata.src_node_id, "unknown site")
        if reply.has_error():
            log(WARNING, "ichfed: %s failed this round: %s", site, reply.error.reason)
            if failures is not None:
                failures[site] = _why(reply.error.reason)
            continue
        good.append(reply)
        if model is None or reply.metadata.message_type != MessageType.TRAIN:
            continue
        problems = [problem_with(reply.content["arrays"], model) if "arrays" in reply.content
                    else "it holds no weights"]
        if "optimizer" in reply.content:
            problems.append(problem_with(reply.content["optimizer"],
                                         reply.content["optimizer"]))
        if problem := next((p for p in problems if p), None):
            log(WARNING, "ichfed: rejected %s's update: %s", site, problem)
            for key in ("arrays", "optimizer"):
                reply.content.pop(key, None)
    return good


def _updates(replies: list[Message]) -> list[Message]:
    """The training replies whose update passed `_screen`."""
    return [r for r in replies
            if r.metadata.message_type == MessageType.TRAIN and "arrays" in r.content]


def _save_checkpoint(out: Path, arrays: ArrayRecord, strategy, state: dict) -> None:
    optimizer = getattr(strategy, "optimizer", None)
    save_checkpoint(out, {"weights": unpack(arrays), "state": state,
                          "optimizer": unpack(optimizer) if optimizer else None})


def _calibrate(grid: Grid, plan: Plan, strategy, names: dict[int, str], settings: dict,
               rnd: int) -> tuple[dict[LesionRule, float], int]:
    """Every site scores the best model's lesion rules on its own labelled scans; the means
    are pooled by number of scans (as `ichfed train` does on pooled scans). Returns the pooled
    means and the number of scans."""
    best = pack(load_weights(Path(plan.out)))
    config = ConfigRecord({**settings, "calibrate": 1})
    asks, answers = _exchange(
        grid, lambda: list(strategy.configure_evaluate(rnd, best, config, grid)),
        lambda got: _screen(got, None, names), plan, names, all_needed=True)
    if len(answers) < len(asks):
        raise IchfedError(f"{len(asks) - len(answers)} site(s) did not score the final model; "
                          f"its weights are in {plan.out}")
    metrics = [a.content["metrics"] for a in answers]  # pooled here: a private FedAvg
    scans = sum(int(m["num-examples"]) for m in metrics)  # weighs its updates equally
    return {rule: sum(float(m[rule_key(rule)]) * int(m["num-examples"]) for m in metrics) / scans
            for rule in RULES}, scans


def _round_messages(strategy, rnd: int, arrays: ArrayRecord, kept: ArrayRecord | None,
                    settings: dict, grid: Grid, train: bool) -> list[Message]:
    """One exchange: the strategy's training messages (their sites validate `kept`, the model
    the last round left, before they train) and, to every other site, a validation message
    for `kept`. Without `kept` (the first round) nothing is validated; without `train` (after
    the last round) every site only validates."""
    messages = list(strategy.configure_train(
        rnd, arrays, ConfigRecord({**settings, "validate": int(kept is not None)}), grid)
        ) if train else []
    if kept is not None:
        training = {m.metadata.dst_node_id for m in messages}
        messages += [m for m in strategy.configure_evaluate(rnd, kept, ConfigRecord(settings),
                                                            grid)
                     if m.metadata.dst_node_id not in training]
    return messages


def _row(rnd: int, names: dict[int, str], trained: list[Message], replies: list[Message],
         sent: list[Message], train_metrics, seconds: float) -> dict:
    """Round `rnd`'s line in federation.csv, its validation loss to come. Its times are its
    exchange's: the sites' training, their validation of the model the round started from,
    and the rest (the exchange less the busiest site's validation and training)."""
    metrics = [r.content["metrics"] for r in replies]
    busy = max(float(m.get("train-seconds", 0.0)) + float(m.get("val-seconds", 0.0))
               for m in metrics)
    return {"round": rnd,
            "sites": " ".join(sorted(names[r.metadata.src_node_id] for r in trained)),
            "train_loss": round(float(train_metrics["train-loss"]), 5), "val_loss": None,
            "seconds": round(seconds, 2),
            "train_seconds": round(max(float(r.content["metrics"]["train-seconds"])
                                       for r in trained), 2),
            "val_seconds": round(max(float(m.get("val-seconds", 0.0)) for m in metrics), 2),
            "other_seconds": round(seconds - busy, 2),
            "bytes_sent": sum(payload_bytes(m.content) for m in sent),
            "bytes_received": sum(payload_bytes(r.content) for r in replies)}


def _spend(plan: Plan, strategy, state: dict, trained: list[str]) -> dict:
    """The epsilon (at the plan's delta) one site has spent so far, the most spent by any: by
    Flower's accountant where the coordinator adds the noise (every site takes part in every
    round), else counted from each site's own noised releases (cwt)."""
    if plan.strategy != "cwt":
        state["epsilon"] = strategy.epsilon()
    else:
        releases = state.setdefault("releases", {})
        for site in trained:
            releases[site] = releases.get(site, 0) + 1
        state["epsilon"] = epsilon_spent(plan.privacy.noise_multiplier, max(releases.values()),
                                         plan.privacy.delta)
    return {"epsilon": round(state["epsilon"], 4), "delta": plan.privacy.delta}


def _pooled_validation(replies: list[Message]) -> float:
    """The sites' validation losses pooled by their numbers of validation patches."""
    metrics = [r.content["metrics"] for r in replies]
    patches = sum(float(m["val-examples"]) for m in metrics)
    return sum(float(m["val-loss"]) * float(m["val-examples"]) for m in metrics) / patches


def run_federation(grid: Grid, plan: Plan, on_round: Callable[[dict], None] | None = None
                   ) -> dict:
    """Rounds until early stopping on the sites' pooled validation loss; returns the summary.

    One exchange a round: the sites validate the model the last round left before they train
    (or only validate, where cwt does not pick them), so a round's validation loss arrives with
    the next round's replies, and its row in federation.csv is written then. Early stopping
    reads it there; a round trained after the one that used up the patience is dropped, so
    the rounds and the model kept are those of validating after every round. After the last
    round one exchange validates it."""
    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    names, pixels = discover_sites(grid, plan)
    plan = replace(plan, model=plan.model.resolved(pixels))
    settings = {"inplane-mm": plan.model.working_mm or 0.0,  # 0: each scan's own grid
                "slice-mm": plan.model.working_slice_mm or 0.0}
    order = sorted(names, key=names.get)
    strategy = build_strategy(plan, order)
    arrays = pack(initial_weights(plan))
    state = {"round": 0, "best": float("inf"), "best_step": 0, "wait": 0, "history": [],
             "seconds": 0.0, "pending": None}
    if plan.resume:
        saved = load_checkpoint(out)
        arrays, state = pack(saved["weights"]), {"pending": None, **saved["state"]}
        if saved["optimizer"] is not None:
            strategy.optimizer = pack(saved["optimizer"])
        if getattr(strategy, "accountant", None) and state["round"]:  # the rounds released
            strategy.accountant.compose(strategy.privacy_event(), state["round"])
    tspec = plan.train
    start = time.time() - state["seconds"]
    failures: dict[str, str] = {}  # the latest reason each site gave for failing
    while True:
        pending = state["pending"]  # the last round trained, its validation still to come
        stopped = stop_reason(state, tspec) or (
            "max rounds" if state["round"] >= tspec.max_epochs else None)
        if stopped and pending is None:
            break
        rnd, t0 = state["round"] + 1, time.time()
        kept_state = kept_weights(unpack(arrays)) if pending else None
        kept = pack(kept_state) if kept_state is not None else None
        sent, replies = _exchange(
            grid, lambda r=rnd, a=arrays, k=kept, t=not stopped: _round_messages(
                strategy, r, a, k, settings, grid, t),
            lambda got, a=arrays: _screen(got, a, names, failures), plan, names,
            all_needed=True)
        trained = _updates(replies)
        unanswered = sorted(names[m.metadata.dst_node_id] for m in sent if m.metadata.dst_node_id
                            not in {r.metadata.src_node_id for r in replies})
        if (pending and unanswered) or (not stopped and not trained):
            what, whom = ("validation", unanswered) if pending and unanswered else (
                "update", sorted(names[m.metadata.dst_node_id] for m in sent
                                 if m.metadata.message_type == MessageType.TRAIN))
            because = "; ".join(f"{site}: {failures[site]}" for site in whom if site in failures)
            raise IchfedError(f"round {rnd}: no usable {what} from {', '.join(whom)}"
                              f"{f' ({because})' if because else ''}; the last completed "
                              f"round's model is in {out / CHECKPOINT}")
        if pending:
            pending["val_loss"] = round(_pooled_validation(replies), 5)
            if record(state, pending["val_loss"], pending["round"], tspec):
                save_weights(kept_state, out)
            state["history"].append(pending)
            state["pending"] = None
            write_csv(state["history"], out / LOG)
            log(INFO, "ichfed: round %s", pending)
            if on_round:  # with the run's seconds so far, a resumed run's earlier ones included
                on_round({**pending, "elapsed": time.time() - start})
        if not stopped and not (pending and state["wait"] >= tspec.patience):
            new, train_metrics = strategy.aggregate_train(rnd, trained)
            arrays = new if new is not None else arrays
            state["pending"] = _row(rnd, names, trained, replies, sent, train_metrics,
                                    time.time() - t0)
            if plan.privacy:
                state["pending"].update(_spend(plan, strategy, state, [
                    names[r.metadata.src_node_id] for r in trained]))
            state["round"] = rnd
        state["seconds"] = time.time() - start
        _save_checkpoint(out, arrays, strategy, state)
    model, calibration = plan.model, {}
    if tspec.calibrate:
        model, calibration = choose(model, *_calibrate(grid, plan, strategy, names, settings,
                                                       state["round"]))
    summary = {"strategy": plan.strategy, "sites": [names[n] for n in order],
               "carry_optimizer": plan.carry_optimizer, "rounds": state["round"],
               "best_round": state["best_step"], "best_val_loss": round(state["best"], 5),
               "stopped": stopped, "seconds": round(state["seconds"], 1),
               "history": state["history"], **calibration}
    if plan.privacy:  # the epsilon spent: None without noise (no guarantee)
        spent = state.get("epsilon", 0.0)
        summary["privacy"] = {**plan.privacy.to_dict(), "unit": "site",
                              "spent_epsilon": None if spent == float("inf") else spent}
    save_config(out, model, plan.train.to_dict(), summary)
    (out / CHECKPOINT).unlink()
    return summary


def make_server_app(fallback: dict | None = None,
                    wrap_grid: Callable[[Grid], Grid] | None = None,
                    on_round: Callable[[dict], None] | None = None,
                    errors: list | None = None) -> ServerApp:
    """The ServerApp; the simulation passes its run config, a progress callback and a list
    that receives the error, since Flower's in-process simulation swallows it."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        shorten()  # the replies' weights are pulled without Flower's 1-10 s retries
        plan = plan_from(context.run_config, fallback or {})
        try:
            run_federation(wrap_grid(grid) if wrap_grid else grid, plan, on_round)
        except Exception as exc:
            if errors is not None:
                errors.append(exc)
            raise

    return app


app = make_server_app()
