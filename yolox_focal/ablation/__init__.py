"""The accuracy ablation: which loss helps? Trains an exp once per variant and seed and compares
each variant with YOLOX's losses, paired by seed. ``tools/ablate.py`` is its command.

- ``grid``: the variants (built-in and ``--variant``), the runs of a grid and their folders;
- ``runs``: one run (its settings record, kept, resumed or refused; ``tools/train.py`` in a child
  process holding the run's folder claim), its attempts and records;
- ``local``: the grid's runs on this machine, ``--jobs N`` at a time, a failed run retried once:
  the one loop of every runner;
- ``ray_runner``: ``--ray``, the same loop with each run a task on a Ray cluster (Ray imported only
  there);
- ``stats``: paired differences, their confidence intervals;
- ``report``: ``ablation.md`` and the plots from the finished runs;
- ``cli``: the command line.

It sits above the runtime: it imports the runtime, the adapter and the loss core, never the reverse.
"""
