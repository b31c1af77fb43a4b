"""``--mlflow [URI]``: the ablation as one MLflow parent run with a child run per variant x seed.

The parent (tag ``yolox_focal.ablation``: the ``--out`` folder) holds the grid's settings as params
and the report and plots as artifacts; each finished run is a child with its settings as params
(``exp.<key>`` for the exp's values), its ``metrics.jsonl`` records as per-epoch metrics (the
losses, the AP, the per-class AP), its training time, and ``variant`` and ``seed`` as tags. Logged
after the grid, from what is on disk: running the command again adds the runs finished since and
refreshes the parent's artifacts, never a second parent or child. Without a URI, the store is the
SQLite file ``<out>/mlflow.db``.
"""

import json

from ..runtime.tracking import MlflowRunLogger, client, experiment_id, flat_params
from .grid import describe, grid_runs, run_dir
from .runs import done_record

__all__ = ["EXPERIMENT", "default_uri", "log_grid"]

EXPERIMENT = "yolox-focal-ablation"


def default_uri(out):
    return f"sqlite:///{out}/mlflow.db"


def _find(store, experiment, tags):
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = store.search_runs([experiment], filter_string=query, max_results=2)
    return found[0].info.run_id if found else None


def log_grid(args, uri, files):
    """Log the grid in ``args.out`` to ``uri``; returns (the parent's run id, children added)."""
    store = client(uri)
    experiment = experiment_id(store, EXPERIMENT, uri)
    parent_id = _find(store, experiment, {"yolox_focal.ablation": str(args.out)})
    params = {"exp_file": str(args.exp_file), "variants": " ".join(args.variants),
              "seeds": " ".join(map(str, args.seeds)), "batch_size": args.batch_size, "opts": " ".join(args.opts),
              "device": args.device, "fp16": args.fp16}
    if parent_id is None:
        parent = MlflowRunLogger(uri, EXPERIMENT, run_name=f"ablation {args.out.name}", params=params,
                                 tags={"yolox_focal.ablation": str(args.out)})
    else:
        parent = MlflowRunLogger(uri, EXPERIMENT, run_id=parent_id)
    added = 0
    for seed, variant in grid_runs(args.variants, args.seeds):
        record = done_record(args.out, variant, seed)
        tags = {"variant": variant, "seed": str(seed), "mlflow.parentRunId": parent.run_id}
        if record is None or _find(store, experiment, tags):
            continue
        directory = run_dir(args.out, variant, seed)
        recorded = directory / "settings.json"  # the first runs recorded none
        settings = json.loads(recorded.read_text()) if recorded.exists() else {}
        child = MlflowRunLogger(uri, EXPERIMENT, run_name=directory.name, parent_run_id=parent.run_id,
                                tags={"variant": variant, "seed": str(seed)},
                                params={**flat_params(settings), "variant_settings": describe(args.variant_table[variant])})
        for line in (directory / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                child.log_epoch(json.loads(line))
        if record.get("train_seconds") is not None:
            child.log_epoch({"epoch": 0, "train_seconds": record["train_seconds"]})
        child.finish()
        added += 1
    for name in files:
        parent.log_artifact(args.out / name)
    parent.finish()
    return parent.run_id, added
