"""The project's one MLflow logger: a run's settings as params, its ``metrics.jsonl`` records as
metrics (one step per epoch: the losses, the AP, ``per_class/<class>/ap50_95`` and ``.../ap50``),
tags and artifacts. The CPU trainer logs through it with ``-l mlflow``; the ablation logs its
parent and child runs through it (``--mlflow``).

MLflow is an optional extra (``pip install -e .[tracking]``), imported only here and only when a
logger is made.
"""

import math
import re
from pathlib import Path

from .errors import UsageError

__all__ = ["MlflowRunLogger", "client", "experiment_id", "metrics_of", "flat_params", "plain_values"]

_NOT_IN_A_NAME = re.compile(r"[^0-9A-Za-z_\-. /]")
_BATCH = 100  # MLflow's largest batch of params or metrics


def client(uri):
    """An ``MlflowClient`` on the tracking store ``uri``; one line saying how to install MLflow
    where it is missing."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError("MLflow is not installed: pip install -e .[tracking] (or pip install mlflow)") from None
    return MlflowClient(tracking_uri=uri)


def experiment_id(store, name, uri):
    """The id of the experiment ``name`` on ``store`` (an ``MlflowClient`` on ``uri``), created if
    missing. On a local SQLite store (``sqlite:///<folder>/<file>.db``) a new experiment keeps its
    artifacts beside the database, in ``<folder>/mlartifacts`` (MLflow's default there is
    ``./mlruns`` in whatever folder the command runs from); a server chooses its own."""
    found = store.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        location = (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return store.create_experiment(name, artifact_location=location)


def plain_values(exp):
    """An exp's plain values (numbers, text, tuples, None): what a run's results depend on, as
    params or a settings record."""
    plain = (bool, int, float, str, tuple, type(None))
    return {k: v for k, v in vars(exp).items() if isinstance(v, plain)}


def metrics_of(record):
    """A ``metrics.jsonl`` record as MLflow metrics: every finite number but the epoch, and the
    per-class AP as ``per_class/<class>/<metric>`` (characters MLflow refuses in a name as "_")."""
    metrics = {}
    for key, value in record.items():
        if key == "per_class":
            for name, figures in (value or {}).items():
                for metric, figure in (figures or {}).items():
                    metrics[f"per_class/{_NOT_IN_A_NAME.sub('_', name)}/{metric}"] = figure
        elif key != "epoch":
            metrics[key] = value
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def flat_params(values, prefix=""):
    """Plain settings as MLflow params (text, at most 500 characters each); nested dicts as
    ``prefix.key``."""
    params = {}
    for key, value in values.items():
        if isinstance(value, dict):
            params.update(flat_params(value, f"{prefix}{key}."))
        else:
            params[f"{prefix}{_NOT_IN_A_NAME.sub('_', str(key))}"] = str(value)[:500]
    return params


class MlflowRunLogger:
    """One MLflow run: made in ``experiment`` (created if missing) on the store ``uri``, or taken up
    again by ``run_id``."""

    def __init__(self, uri, experiment, run_name=None, params=None, tags=None, parent_run_id=None, run_id=None):
        self.client = client(uri)
        if run_id is None:
            experiment = experiment_id(self.client, experiment, uri)
            tags = dict(tags or {})
            if parent_run_id:
                tags["mlflow.parentRunId"] = parent_run_id
            run_id = self.client.create_run(experiment, run_name=run_name, tags=tags).info.run_id
        self.run_id = run_id
        if params:
            self.log_params(params)

    def log_params(self, params):
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + _BATCH])

    def log_epoch(self, record, timestamp_ms=None):
        """A ``metrics.jsonl`` record's metrics at step ``record["epoch"]``."""
        import time

        from mlflow.entities import Metric

        stamp = timestamp_ms or int(time.time() * 1000)
        items = [Metric(k, v, stamp, int(record["epoch"])) for k, v in metrics_of(record).items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[start:start + _BATCH])

    def log_artifact(self, path):
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status="FINISHED"):
        self.client.set_terminated(self.run_id, status)
