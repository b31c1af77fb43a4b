"""Tracking where users track, for real: the ablation in a real MLflow SQLite store (a parent run, a
child per variant x seed, nothing twice on a second run), the CPU trainer's -l mlflow in such a
store and -l wandb (YOLOX's own WandbLogger) in W&B's offline mode; and a plain install imports
none of MLflow, W&B or Ray."""

import json
import os
import subprocess
import sys

import pytest

from cli_helpers import TINY, run_tool
from helpers import REPO
from test_ablation import write_run

EXP = REPO / "exps" / "demo" / "demo_focal.py"


def test_a_plain_install_imports_nothing_of_the_optional_extras():
    code = ("import sys\nimport yolox_focal\nfrom yolox_focal.ablation import cli, local, report, runs, stats\n"
            "from yolox_focal.runtime import cpu_trainer, cpu_evaluators, tracking\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'wandb', 'ray')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_the_ablation_is_one_parent_run_with_a_child_per_run(tmp_path):
    pytest.importorskip("mlflow", reason="the tracking extra: pip install -e .[tracking]")
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (pip install -e .[plots])")
    from mlflow.tracking import MlflowClient

    for seed in (0, 1):
        write_run(tmp_path, "yolox", seed, [0.1, 0.3 + seed / 10], record={"train_seconds": 60.0 + seed})
        write_run(tmp_path, "focal", seed, [0.05, 0.2 + seed / 20])
    (tmp_path / "yolox-seed1" / "settings.json").write_text(json.dumps(
        {"batch_size": 16, "opts": ["max_epoch", "2"], "fp16": False, "exp": {"max_epoch": 2, "obj_loss": "bce"}}))
    command = [sys.executable, str(REPO / "tools" / "ablate.py"), "--report-only", "--out", str(tmp_path),
               "--variants", "yolox", "focal", "--seeds", "0", "1", "--mlflow"]
    elsewhere = tmp_path / "elsewhere"  # the folder the command runs from
    elsewhere.mkdir()
    first = subprocess.run(command, capture_output=True, text=True, cwd=elsewhere)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "4 child runs added" in first.stdout
    # the artifacts beside the store, not in an ./mlruns of the folder the command ran from
    assert list(elsewhere.iterdir()) == []
    assert {p.name for p in (tmp_path / "mlartifacts").rglob("ablation*")} >= {"ablation.md", "ablation_ap.png"}
    store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = store.get_experiment_by_name("yolox-focal-ablation")
    every = store.search_runs([experiment.experiment_id])
    (parent,) = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in every if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted((r.data.tags["variant"], r.data.tags["seed"]) for r in children) == [
        ("focal", "0"), ("focal", "1"), ("yolox", "0"), ("yolox", "1")]
    assert parent.data.params["variants"] == "yolox focal" and parent.data.params["seeds"] == "0 1"
    artifacts = {a.path for a in store.list_artifacts(parent.info.run_id)}
    assert {"ablation.md", "ablation_ap.png", "ablation_ap50.png", "ablation_differences.png"} <= artifacts
    yolox1 = next(r for r in children if r.data.tags["variant"] == "yolox" and r.data.tags["seed"] == "1")
    history = store.get_metric_history(yolox1.info.run_id, "ap50")
    assert [(m.step, m.value) for m in history] == [(1, 0.1), (2, pytest.approx(0.4))]  # as metrics.jsonl
    assert [m.value for m in store.get_metric_history(yolox1.info.run_id, "train_seconds")] == [61.0]
    assert yolox1.info.status == "FINISHED" and yolox1.data.params["variant_settings"] == "YOLOX's losses"
    assert yolox1.data.params["exp.max_epoch"] == "2" and yolox1.data.params["batch_size"] == "16"
    second = subprocess.run(command, capture_output=True, text=True)
    assert second.returncode == 0 and "0 child runs added" in second.stdout
    assert len(store.search_runs([experiment.experiment_id])) == 5  # nothing logged twice


@pytest.fixture(scope="module")
def data(tiny_demo_data):
    return tiny_demo_data


def test_the_cpu_trainer_logs_to_mlflow(tmp_path, data, monkeypatch):
    pytest.importorskip("mlflow", reason="the tracking extra: pip install -e .[tracking]")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/store.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_tool("train.py", "-f", EXP, "-b", "4", "--device", "cpu", "-expn", "run", "-l", "mlflow", "max_epoch", "2",
             "data_dir", data, "output_dir", tmp_path / "out", *TINY)
    store = MlflowClient(tracking_uri=uri)
    (run,) = store.search_runs([store.get_experiment_by_name("yolox-focal").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["max_epoch"] == "2" and run.data.params["obj_loss"] == "focal"
    records = [json.loads(line) for line in (tmp_path / "out" / "run" / "metrics.jsonl").read_text().splitlines()]
    for key in ("total_loss", "ap50_95"):
        assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, key)] == [
            (r["epoch"], pytest.approx(r[key])) for r in records]
    name = next(iter(records[-1]["per_class"]))
    assert store.get_metric_history(run.info.run_id, f"per_class/{name}/ap50")[-1].value == pytest.approx(
        records[-1]["per_class"][name]["ap50"])


def test_the_cpu_trainer_logs_to_wandb_offline(tmp_path, data):
    pytest.importorskip("wandb", reason="the tracking extra: pip install -e .[tracking]")
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), "-f", str(EXP), "-b", "4", "--device",
                             "cpu", "-expn", "run", "-l", "wandb", "max_epoch", "1", "data_dir", str(data),
                             "output_dir", str(tmp_path / "out"), *TINY], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (offline,) = (tmp_path / "out" / "run" / "wandb").glob("offline-run-*")
    (log,) = offline.glob("*.wandb")
    assert log.stat().st_size > 0
    assert not (tmp_path / "wandb").exists()  # in the run's folder, not where the command ran
