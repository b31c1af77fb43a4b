"""The ablation runner's bookkeeping: its table and plots from finished runs, and the guard that
keeps a resumed run on the schedule it started with. (Training itself is covered by
test_cpu_training.py, through the same tools/train.py the runner calls.)"""

import json
import subprocess
import sys

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import ablate  # noqa: E402


def write_run(out, variant, seed, ap50s, done=True):
    directory = ablate.run_dir(out, variant, seed)
    directory.mkdir(parents=True)
    records = [{"epoch": e + 1, "obj_loss": 1.0 / (e + 1), "ap50": ap, "ap50_95": ap / 2, "ap_small": ap / 4}
               for e, ap in enumerate(ap50s)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if done:
        (directory / "done").touch()


def test_table_is_mean_and_spread_of_last_epochs_of_finished_runs(tmp_path):
    write_run(tmp_path, "bce", 0, [0.1, 0.3])
    write_run(tmp_path, "bce", 1, [0.1, 0.5])
    write_run(tmp_path, "bce", 2, [0.9, 0.9], done=False)  # interrupted: left out of the means
    write_run(tmp_path, "focal", 0, [0.05, 0.2])
    table = ablate.summary_table(tmp_path, ["bce", "focal", "focal-w4"], [0, 1, 2])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert set(rows) == {"bce", "focal"}  # focal-w4 has no finished run
    assert rows["bce"][1] == "2"
    assert rows["bce"][3] == "0.4000 ± 0.1414"  # AP50 of epoch 2 over seeds 0 and 1
    assert rows["bce"][5] == "0: 0.300, 1: 0.500"
    assert rows["focal"][3] == "0.2000 ± 0.0000"


def test_report_only_writes_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (pip install -e .[plots])")
    write_run(tmp_path, "bce", 0, [0.1, 0.3])
    write_run(tmp_path, "focal", 0, [0.05, 0.2])
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "ablate.py"), "--report-only", "--out", str(tmp_path),
                    "--variants", "bce", "focal", "--seeds", "0"], check=True, capture_output=True)
    assert "| focal |" in (tmp_path / "ablation.md").read_text()
    for name in ("ablation_ap.png", "ablation_ap50.png", "ablation_obj_loss.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_run_resumes_only_with_its_own_settings(tmp_path):
    directory = tmp_path / "focal-seed0"
    ablate.check_same_settings(directory, {"batch_size": 16, "opts": ["max_epoch", "12"]})
    ablate.check_same_settings(directory, {"batch_size": 16, "opts": ["max_epoch", "12"]})  # same: fine
    with pytest.raises(SystemExit, match="was trained with .* pass the same -b/--opts, or another --out"):
        ablate.check_same_settings(directory, {"batch_size": 16, "opts": ["max_epoch", "18"]})


def test_a_finished_run_of_another_exp_is_not_kept(tmp_path):
    args = ablate.argparse.Namespace(batch_size=16, opts=["max_epoch", "12"], device="cpu")
    opts = ["obj_loss", "focal", "focal_gamma", "1.5", "focal_alpha", "0.25", "seed", "0", "max_epoch", "12"]
    exp = ablate.exp_settings(opts)
    assert exp["max_epoch"] == 12 and exp["seed"] == 0 and exp["obj_loss"] == "focal"
    directory = ablate.run_dir(tmp_path, "focal", 0)
    directory.mkdir()
    (directory / "done").touch()
    before = dict(exp, basic_lr_per_img=exp["basic_lr_per_img"] / 2)  # the exp file has changed since
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts, "exp": before}))
    with pytest.raises(SystemExit, match=r"other settings \(basic_lr_per_img: "):
        ablate.train(tmp_path, "focal", 0, args)
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts}))  # older record
    with pytest.raises(SystemExit, match="exp values: not recorded"):
        ablate.train(tmp_path, "focal", 0, args)
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts, "exp": exp}))
    ablate.train(tmp_path, "focal", 0, args)  # same settings, finished: kept, nothing trained
