#!/usr/bin/env python3
"""Accuracy ablation: which loss helps? Trains an exp once per variant and seed and compares each
variant with YOLOX's losses, paired by seed (yolox_focal.ablation; ``--help`` for the flags).

    python tools/ablate.py --list                                         # the built-in variants
    python tools/ablate.py --opts max_epoch 12 no_aug_epochs 2            # the demo grid, 3 seeds
    python tools/ablate.py --jobs 2 --device cpu --opts max_epoch 12      # two runs at once, a core each
    python tools/ablate.py -f exps/my_data.py --variants yolox ciou --variant ciou-w2 box_loss ciou \\
        box_loss_weight 2 --seeds 0 1 2 --out runs/ablation
"""

from yolox_focal.runtime import interrupt  # first: a Ctrl-C or SIGTERM stops with one line

interrupt.install()

from yolox_focal.ablation.cli import main  # noqa: E402
from yolox_focal.runtime.cli import main_guard  # noqa: E402

if __name__ == "__main__":
    main_guard(main)
