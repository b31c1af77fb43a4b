"""The losses that keep a running mean of a batch statistic (``wiou_v3``: the mean IoU loss;
``slide_ema``: the mean IoU of the positives; ``atfl``: the mean p_t), kept the way declare.py says
a loss keeps state, in a :class:`~.running_state.RunningMean` (which says how it moves, and how it
stays equal on every process). The state belongs to the instance: two heads, or two branches, never
share it (copies keep it as a class attribute, shared by all).

Needs only torch.
"""

from .declare import KitLoss
from .running_state import RunningMean

__all__ = ["RunningMeanLoss"]


class RunningMeanLoss(KitLoss):
    """Base of a loss keeping ``mean``, the running mean of a batch statistic, and ``updates``, how
    many batches moved it. Subclasses declare ``initial`` (the mean before the first batch) and
    ``warm_start`` (see :class:`~.running_state.RunningMean`), and have a ``momentum`` parameter."""

    stateful = True
    initial = 1.0
    warm_start = False

    def __init__(self, **values):
        super().__init__(**values)
        self.running = RunningMean(self.initial, self.values["momentum"], self.warm_start)

    @property
    def mean(self):
        return self.running.mean

    @property
    def updates(self):
        return self.running.updates

    def update_mean(self, total, count):
        """Move the mean with this batch's statistic, ``total / count`` (0-dim tensors: its sum and
        the number of its elements), in training mode; return the mean to use for this batch."""
        return self.running.update(total, count, self.training)

    def loss_state(self):
        return self.running.state()

    def load_loss_state(self, state):
        self.running.load(f"the {self.name} loss", state)

    def extra_repr(self):
        return super().extra_repr() + f", mean={self.mean.item():.4g}, updates={int(self.updates.item())}"
