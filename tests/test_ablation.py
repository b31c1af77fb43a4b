"""The ablation's bookkeeping (yolox_focal.ablation, tools/ablate.py): its table and plots from
finished runs, and the guard that keeps a resumed run on the schedule it started with. (Training
itself is covered by test_cpu_training.py, through the same tools/train.py the runs call.)"""

import argparse
import json
import os
import subprocess
import sys

import pytest

from helpers import REPO

from yolox_focal.ablation import cli, grid, local, report, runs
from yolox_focal.runtime.errors import UsageError


def write_run(out, variant, seed, ap50s, done=True, record=None):
    directory = grid.run_dir(out, variant, seed)
    directory.mkdir(parents=True, exist_ok=True)
    records = [{"epoch": e + 1, "obj_loss": 1.0 / (e + 1), "ap50": ap, "ap50_95": ap / 2, "ap_small": ap / 4}
               for e, ap in enumerate(ap50s)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if done:  # the first runs wrote an empty done file, later ones a record
        (directory / "done").write_text(json.dumps(record) if record else "")


def test_table_is_mean_and_spread_of_last_epochs_of_finished_runs(tmp_path):
    write_run(tmp_path, "yolox", 0, [0.1, 0.3])
    write_run(tmp_path, "yolox", 1, [0.1, 0.5])
    write_run(tmp_path, "yolox", 2, [0.9, 0.9], done=False)  # interrupted: left out of the means
    write_run(tmp_path, "focal", 0, [0.05, 0.2], record={"train_seconds": 420.0})
    table = report.summary_table(tmp_path, ["yolox", "focal", "focal-w4"], [0, 1, 2])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert set(rows) == {"yolox", "focal"}  # focal-w4 has no finished run
    assert rows["yolox"][0] == "YOLOX's losses" and rows["focal"][0] == "obj_loss=focal"
    assert rows["yolox"][1] == "0, 1" and rows["focal"][1] == "0"
    assert rows["yolox"][3] == "0.4000 ± 0.1414 (0.300 / 0.500)"  # AP50 of epoch 2 over seeds 0 and 1
    assert rows["yolox"][2] == "0.2000 ± 0.0707 (0.150 / 0.250)"  # AP50:95
    assert rows["focal"][3] == "0.2000 ± 0.0000 (0.200)"
    assert rows["yolox"][5] == "n/a" and rows["focal"][5] == "7.0"  # minutes of training per run


def test_differences_are_paired_by_seed_and_judged_against_seed_noise(tmp_path):
    for seed, ap in enumerate([0.30, 0.10, 0.50]):  # seeds vary a lot ...
        write_run(tmp_path, "yolox", seed, [ap])
        write_run(tmp_path, "ciou", seed, [ap + 0.02 + 0.001 * seed])  # ... ciou is steadily ahead
        write_run(tmp_path, "giou", seed, [ap + (0.05, -0.06, 0.02)[seed]])  # giou: up and down
    write_run(tmp_path, "diou", 0, [0.9])  # one seed: nothing to pair
    table = report.difference_table(tmp_path, ["yolox", "ciou", "giou", "diou"], [0, 1, 2])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert set(rows) == {"ciou", "giou"}
    # AP50: mean ± sd [mean ± t(2 df) * sd / sqrt(3)], the interval leaving out 0
    assert rows["ciou"][1] == "+0.0210 ± 0.0010 [+0.0185, +0.0235] *"
    assert rows["ciou"][3].startswith("distinguishable from seed noise on") and "ap50 (better)" in rows["ciou"][3]
    assert rows["giou"][1] == "+0.0033 ± 0.0569 [-0.1379, +0.1446]"  # no *
    assert rows["giou"][3] == "not distinguishable from seed noise (3 paired seeds)"


def test_footer_counts_runs_training_time_and_machines(tmp_path):
    where = "CPU Example 9000, 2 cores, torch 2.14.1"
    write_run(tmp_path, "yolox", 0, [0.3], record={"train_seconds": 1800.0, "trained_on": where})
    write_run(tmp_path, "focal", 0, [0.2], record={"train_seconds": 1800.0, "trained_on": where})
    write_run(tmp_path, "focal", 1, [0.2])  # recorded nothing
    write_run(tmp_path, "ciou", 0, [0.2], done=False)
    assert report.runs_footer(tmp_path, ["yolox", "focal", "ciou"], [0, 1]) == (
        f"3 runs finished, 1.0 h of training (recorded for 2 of them); trained on: {where} (2 runs); not recorded (1 run)")


def test_a_run_records_what_it_trained_on():
    import torch

    from yolox_focal.runtime.machine import cpu_model

    assert runs.trained_on("cpu", fp16=True) == f"CPU {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"


def test_own_variants_and_progress():
    table = grid.parse_variants([["lr2", "basic_lr_per_img", "0.002", "box_loss", "ciou"]])
    assert table["lr2"] == {"basic_lr_per_img": "0.002", "box_loss": "ciou"} and "focal" in table
    opts = grid.variant_opts(table, "lr2")
    assert opts[opts.index("box_loss") + 1] == "ciou" and opts[opts.index("obj_loss") + 1] == "bce"
    with pytest.raises(UsageError, match="built-in variant"):
        grid.parse_variants([["focal", "obj_loss", "bce"]])
    with pytest.raises(UsageError, match="key value pairs"):
        grid.parse_variants([["odd", "box_loss"]])
    assert runs.progress_line(0, 21, []) == "[run 1/21] "
    assert runs.progress_line(3, 21, [300.0, 360.0, 330.0]) == "[run 4/21, 3 done, ~1h39m left] "


def test_report_only_writes_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (pip install -e .[plots])")
    for seed in (0, 1):
        write_run(tmp_path, "yolox", seed, [0.1, 0.3 + seed / 10])
        write_run(tmp_path, "focal", seed, [0.05, 0.2 + seed / 20])
    subprocess.run([sys.executable, str(REPO / "tools" / "ablate.py"), "--report-only", "--out", str(tmp_path),
                    "--variants", "yolox", "focal", "--seeds", "0", "1"], check=True, capture_output=True)
    report = (tmp_path / "ablation.md").read_text()
    assert "| focal |" in report and "| focal | -0.0625 ± 0.0177 [-0.2213, +0.0963] |" in report  # AP50:95
    assert f"`python tools/ablate.py -f exps/demo/demo_focal.py --out {tmp_path} --variants yolox focal " \
           "--seeds 0 1 -b 16 --device auto`" in report
    assert "4 runs finished, training time not recorded; trained on: not recorded (4 runs)" in report
    assert "- ap50_95: paired sd 0.0177 (pooled over 1 variant); a difference of 0.01 needs about 27 paired seeds" \
        in report  # (2.8016 * 0.0177 / 0.01)^2 + 1.92 = 26.5
    for name in ("ablation_ap.png", "ablation_ap50.png", "ablation_obj_loss.png", "ablation_differences.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_run_resumes_only_with_its_own_settings(tmp_path):
    directory = tmp_path / "focal-seed0"
    runs.check_same_settings(directory, {"batch_size": 16, "opts": ["max_epoch", "12"]})
    runs.check_same_settings(directory, {"batch_size": 16, "opts": ["max_epoch", "12"]})  # same: fine
    with pytest.raises(UsageError, match="was trained with .* pass the same -b/--opts, or another --out"):
        runs.check_same_settings(directory, {"batch_size": 16, "opts": ["max_epoch", "18"]})


def test_a_finished_run_of_another_exp_is_not_kept(tmp_path):
    args = argparse.Namespace(batch_size=16, opts=["max_epoch", "12"], device="cpu", fp16=False,
                                     exp_file=cli.DEMO_EXP, variant_table=grid.VARIANTS)
    opts = grid.variant_opts(grid.VARIANTS, "focal") + ["seed", "0", "max_epoch", "12"]
    exp = runs.exp_settings(cli.DEMO_EXP, opts)
    assert exp["max_epoch"] == 12 and exp["seed"] == 0 and exp["obj_loss"] == "focal"
    directory = grid.run_dir(tmp_path, "focal", 0)
    directory.mkdir()
    (directory / "done").touch()
    before = dict(exp, basic_lr_per_img=exp["basic_lr_per_img"] / 2)  # the exp file has changed since
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts, "fp16": False,
                                                         "exp": before}))
    with pytest.raises(UsageError, match=r"other settings \(basic_lr_per_img: "):
        runs.prepare(tmp_path, "focal", 0, args)
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts}))  # older record
    with pytest.raises(UsageError, match="exp values: not recorded"):
        runs.prepare(tmp_path, "focal", 0, args)
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts, "fp16": False,
                                                         "exp": exp}))
    assert runs.prepare(tmp_path, "focal", 0, args) is None  # same settings, finished: kept, nothing trained
    assert not (directory / ".claim").exists()  # and its folder free again
    # a run recorded before a later version added a loss setting: kept while the setting is at YOLOX's value
    older = {k: v for k, v in exp.items() if not k.startswith("box_uiou_")}
    assert len(older) < len(exp)
    (directory / "settings.json").write_text(json.dumps({"batch_size": 16, "opts": args.opts, "fp16": False,
                                                         "exp": older}))
    assert runs.prepare(tmp_path, "focal", 0, args) is None
    changed = dict(args.variant_table, focal={**args.variant_table["focal"], "box_uiou_start": 1.5})
    with pytest.raises(UsageError, match=r"other settings \(box_uiou_start: None -> 1.5\)"):
        runs.prepare(tmp_path, "focal", 0, argparse.Namespace(**{**vars(args), "variant_table": changed}))
    assert runs.prepare(tmp_path, "focal", 0, args) is None  # nothing rewritten by the refusal


def test_a_resumed_grid_keeps_finished_runs_and_estimates_from_their_times(tmp_path, capsys):
    args = argparse.Namespace(batch_size=16, opts=["max_epoch", "12"], device="cpu", fp16=False,
                                     exp_file=cli.DEMO_EXP, variant_table=grid.VARIANTS, out=tmp_path,
                                     variants=["yolox", "focal", "ciou"], seeds=[0], jobs=1, gpus_per_run=None)
    for variant, trained_on in [("yolox", runs.trained_on("cpu", False)), ("focal", "another machine"),
                                ("ciou", runs.trained_on("cpu", False))]:
        opts = grid.variant_opts(grid.VARIANTS, variant) + ["seed", "0"] + args.opts
        runs.check_same_settings(grid.run_dir(tmp_path, variant, 0), {
            "batch_size": 16, "opts": args.opts, "fp16": False, "exp": runs.exp_settings(cli.DEMO_EXP, opts)})
        write_run(tmp_path, variant, 0, [0.3], record={"train_seconds": 600.0, "trained_on": trained_on})
    assert local.train_grid(args) == []
    assert capsys.readouterr().out.splitlines() == [
        "[ablate] [run 1/3] yolox-seed0: done, kept",
        "[ablate] [run 2/3, 1 done, ~0h20m left] focal-seed0: done, kept",  # 10 min a run here, 2 left
        "[ablate] [run 3/3, 2 done, ~0h10m left] ciou-seed0: done, kept",  # another machine's time left out
    ]


@pytest.mark.parametrize("variant", sorted(grid.VARIANTS))
def test_every_built_in_variant_passes_the_settings_gate_as_the_command_line_gives_it(variant):
    from yolox_focal.losses.settings import parse_setting, resolve_settings, settings_by_name

    changed = grid.VARIANTS[variant]
    # the variant's values as the exp receives them (text), parsed once, then through the one gate
    resolved = resolve_settings({key: parse_setting(key, str(value)) for key, value in changed.items()})
    for key, value in changed.items():
        assert resolved[settings_by_name()[key].name] == value, (variant, key)


def test_the_built_in_variants_cover_every_registered_loss_and_assigner():
    from yolox_focal.losses.assign import ASSIGNER
    from yolox_focal.losses.declare import losses_for
    from yolox_focal.losses.settings import BRANCHES, YOLOX_LOSSES

    chosen = {(key, value) for settings in grid.VARIANTS.values() for key, value in settings.items()}
    for branch in BRANCHES:
        for loss in losses_for(branch):
            if loss != YOLOX_LOSSES[branch]:
                assert (f"{branch}_loss", loss) in chosen, f"no built-in variant tries {branch}_loss {loss}"
    for assigner in ASSIGNER.choices:
        assert assigner == "simota" or ("assigner", assigner) in chosen, assigner


def test_a_run_that_another_ablation_trains_is_refused(tmp_path):
    args = argparse.Namespace(batch_size=16, opts=["max_epoch", "12"], device="cpu", fp16=False,
                                     exp_file=cli.DEMO_EXP, variant_table=grid.VARIANTS)
    directory = grid.run_dir(tmp_path, "focal", 0)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from yolox_focal.runtime.folder_claim import claim_folder\n"
                               f"claim_folder({str(directory)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UsageError, match=f"^{directory} is in use by another run .*pid {holder.pid},"):
            runs.prepare(tmp_path, "focal", 0, args)
        assert not (directory / "settings.json").exists()  # refused before any work
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("argv, line", [
    (["--variants", "yolox", "nope"], "error: unknown variant 'nope'; see --list, or define it with --variant"),
    (["--seeds", "0", "1", "0"], "error: --seeds names seed 0 twice; name each seed once"),
    (["--variant", "odd", "box_loss"], "error: --variant takes a name, then key value pairs; got odd box_loss"),
    (["--opts", "max_epoch"], "error: --opts takes key value pairs; got max_epoch"),
    (["-f", "no/such/exp.py"], "error: exp file not found: no/such/exp.py; pass an exp file with -f"),
])
def test_a_bad_command_is_one_line_before_any_work(tmp_path, argv, line):
    result = subprocess.run([sys.executable, str(REPO / "tools" / "ablate.py"), "--out", str(tmp_path / "grid"), *argv],
                            capture_output=True, text=True, cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (2, [line], "")
    assert not (tmp_path / "grid").exists()


def test_a_report_of_a_folder_that_does_not_exist_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "tools" / "ablate.py"), "--report-only", "--out",
                             str(tmp_path / "typo")], capture_output=True, text=True, cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (
        2, [f"error: --report-only: {tmp_path / 'typo'} does not exist; pass the --out the grid trained into"], "")
    assert not (tmp_path / "typo").exists()


def test_the_benchmarks_folder_holds_no_user_command():
    commands = [p.name for p in (REPO / "benchmarks").glob("*.py") if "__main__" in p.read_text()
                and not p.name.startswith("bench_")]
    assert commands == []
    assert "python tools/ablate.py" in (REPO / "benchmarks" / "ablation_kit" / "ablation.md").read_text()


def write_classes(out, variant, seed, per_class):
    """A finished run whose last evaluation scored ``per_class`` ({name: AP50:95, or None}); AP50 twice that."""
    directory = grid.run_dir(out, variant, seed)
    directory.mkdir(parents=True, exist_ok=True)
    record = {"epoch": 1, "ap50_95": 0.1, "ap50": 0.2, "ap_small": 0.05,
              "per_class": {name: None if ap is None else {"ap50_95": ap, "ap50": 2 * ap} for name, ap in per_class.items()}}
    (directory / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    (directory / "done").write_text("")


def test_per_class_differences_are_paired_by_seed_and_name_the_classes_beyond_noise(tmp_path):
    for seed, (circle, square) in enumerate([(0.30, 0.10), (0.10, 0.40), (0.50, 0.20)]):
        write_classes(tmp_path, "yolox", seed, {"circle": circle, "square": square, "empty": None})
        write_classes(tmp_path, "ciou", seed, {"circle": circle + 0.02 + 0.001 * seed,  # steadily ahead
                                               "square": square + (0.05, -0.06, 0.02)[seed], "empty": None})
    table = report.per_class_table(tmp_path, ["yolox", "ciou"], [0, 1, 2])
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:-1]]
            for line in table.splitlines() if line.startswith("| ciou |")}
    assert set(rows) == {("ciou", "circle"), ("ciou", "square")}  # "empty" has no objects: nothing to pair
    assert rows[("ciou", "circle")] == ["+0.0210 ± 0.0010 [+0.0185, +0.0235] *", "+0.0420 ± 0.0020 [+0.0370, +0.0470] *"]
    assert rows[("ciou", "square")][0] == "+0.0033 ± 0.0569 [-0.1379, +0.1446]"
    assert table.splitlines()[-1] == "- ciou: circle ap50_95 (better), circle ap50 (better)"


def test_per_class_is_reported_only_where_runs_recorded_it(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, "yolox", seed, [0.3])
        write_run(tmp_path, "focal", seed, [0.2])
    assert report.per_class_table(tmp_path, ["yolox", "focal"], [0, 1]).startswith(
        "Per class: the baseline's runs hold no per-class AP")


def test_seeds_needed_matches_the_exact_paired_t_test_sizes():
    from yolox_focal.ablation.stats import seeds_needed

    # the exact sizes of the two-sided paired t-test at 5 % with power 80 % (G*Power; Cohen's tables) for
    # effect / sd = 0.5 and 1.0, and its normal-theory part alone at 0.1 (large n: the two agree)
    assert seeds_needed(sd=0.02, effect=0.01) == 34
    assert seeds_needed(sd=0.01, effect=0.01) == 10
    assert seeds_needed(sd=0.1, effect=0.01) == 787  # 2.8016^2 * 100 = 784.9, + 1.92
    assert seeds_needed(sd=0.0, effect=0.01) == 2
    with pytest.raises(ValueError, match="effect must be above 0"):
        seeds_needed(sd=0.1, effect=0)


def test_the_seeds_line_pools_the_paired_spread_of_the_variants(tmp_path):
    from yolox_focal.ablation.stats import pooled_sd, seeds_needed

    for seed, ap in enumerate([0.30, 0.10, 0.50]):
        write_run(tmp_path, "yolox", seed, [ap])
        write_run(tmp_path, "ciou", seed, [ap + 0.02 + 0.001 * seed])
        write_run(tmp_path, "giou", seed, [ap + (0.05, -0.06, 0.02)[seed]])
    lines = report.seeds_lines(tmp_path, ["yolox", "ciou", "giou"], [0, 1, 2], min_effect=0.01).splitlines()
    finals = {v: runs.finals_of(tmp_path, v, [0, 1, 2]) for v in ("yolox", "ciou", "giou")}
    from yolox_focal.ablation.stats import paired_difference

    ap50 = [paired_difference(finals[v], finals["yolox"], "ap50") for v in ("ciou", "giou")]
    sd = pooled_sd(ap50)
    assert sd == pytest.approx(((0.001 ** 2 + 0.05686 ** 2) / 2) ** 0.5, rel=1e-3)  # equal dof: the variances' mean
    assert f"- ap50: paired sd {sd:.4f} (pooled over 2 variants); a difference of 0.01 needs about " \
           f"{seeds_needed(sd, 0.01)} paired seeds" in lines
    lonely = report.seeds_lines(tmp_path, ["yolox"], [0, 1, 2], min_effect=0.01)
    assert "- ap50_95: no paired spread yet" in lonely


def test_min_effect_is_checked_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "tools" / "ablate.py"), "--out", str(tmp_path / "grid"),
                             "--min-effect", "5"], capture_output=True, text=True)
    assert result.stderr.splitlines() == ["error: --min-effect 5 is not a difference of AP; give one between 0 "
                                          "and 1, e.g. 0.01"] and result.returncode == 2


def test_a_metric_no_run_scored_is_left_out_and_said_so(tmp_path):
    """The VOC route scores no AP by object size: its grid's tables have no ap_small column of n/a."""
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (pip install -e .[plots])")
    for seed in (0, 1):
        for variant, ap in (("yolox", 0.3), ("focal", 0.2)):
            write_run(tmp_path, variant, seed, [ap + seed / 10])
            path = grid.run_dir(tmp_path, variant, seed) / "metrics.jsonl"
            record = dict(json.loads(path.read_text()), ap_small=None)  # what a VOC evaluation writes
            path.write_text(json.dumps(record) + "\n")
    assert report.scored_metrics(tmp_path, ["yolox", "focal"], [0, 1]) == ("ap50_95", "ap50")
    assert report.scored_metrics(tmp_path / "none", ["yolox", "focal"], [0, 1]) == grid.METRICS
    subprocess.run([sys.executable, str(REPO / "tools" / "ablate.py"), "--report-only", "--out", str(tmp_path),
                    "--variants", "yolox", "focal", "--seeds", "0", "1"], check=True, capture_output=True)
    text = (tmp_path / "ablation.md").read_text()
    assert "ap_small" not in text.replace("Not scored by these runs' evaluator, left out: ap_small.", "")
    assert "Not scored by these runs' evaluator, left out: ap_small." in text
    assert "| ap50_95 - yolox (mean ± sd [95 % CI]) | ap50 - yolox (mean ± sd [95 % CI]) | verdict |" in text
