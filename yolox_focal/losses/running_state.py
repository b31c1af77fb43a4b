"""A running mean of a batch statistic, the one kind of state a loss of the kit keeps (``wiou_v3``,
``slide_ema``, ``atfl``, and the Wise-IoU focusing option of any IoU-based box loss), and the sum
over processes that keeps it equal on every process.

The mean is a plain tensor, not a buffer, so a head whose loss keeps one keeps YOLOX's state dict;
it moves only in training and without gradient; each batch's statistic is summed with its count
over the processes of a distributed run (:func:`all_reduce_sum`), so every process holds the same
mean (DDP's buffer broadcast would impose rank 0's, and a mean of per-process means would weigh a
process with few boxes like one with many). Every process must therefore call the loss on every
batch, with no boxes too, as YOLOX's ``get_losses`` does.

Needs only torch.
"""

import math

import torch

__all__ = ["RunningMean", "all_reduce_sum"]


def all_reduce_sum(tensor):
    """``tensor`` summed over the processes of a torch.distributed run (itself in one process), so
    that a statistic, and the state updated from it, is the same on every process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        tensor = tensor.clone()
        torch.distributed.all_reduce(tensor)
    return tensor


class RunningMean:
    """``mean``, the running mean of a batch statistic, and ``updates``, how many batches moved it.

    With ``warm_start`` the mean is the plain average of the batches seen until there are
    ``1 / momentum`` of them (the first batch sets it), then the exponential running mean; without,
    it is the exponential running mean from ``initial`` on (as Wise-IoU's paper has it).
    """

    STATE = ("mean", "updates")

    def __init__(self, initial, momentum, warm_start=False):
        self.momentum, self.warm_start = momentum, warm_start
        self.mean = torch.tensor(float(initial))
        self.updates = torch.tensor(0.0)

    def update(self, total, count, training):
        """Move the mean with this batch's statistic, ``total / count`` (0-dim tensors: its sum and
        the number of its elements, summed over every process), when ``training``; return the mean to
        use for this batch, on ``total``'s device. A batch without elements leaves it as it is."""
        mean = self.mean.to(total.device)
        if not training:
            return mean
        with torch.no_grad():
            total, count = all_reduce_sum(torch.stack([total.detach(), count.detach()]).float())
            updates = self.updates.to(total.device)
            momentum = self.momentum
            if self.warm_start:
                momentum = (1 / (updates + 1)).clamp_(min=momentum)
            # mean + momentum (total / count - mean), written so that a batch without elements
            # (total = count = 0) leaves the mean as it is, without a branch on the device's values
            self.mean = mean + momentum * (total - mean * count) / count.clamp(min=1)
            self.updates = updates + (count > 0).float()
        return self.mean

    def state(self):
        return {"mean": self.mean.detach().cpu().clone(), "updates": self.updates.detach().cpu().clone()}

    def load(self, label, state):
        """Take back what :meth:`state` gave; a one-line ``ValueError`` starting with ``label``."""
        if set(state) != set(self.STATE):
            raise ValueError(f"{label} keeps {', '.join(self.STATE)}; got {sorted(state)}")
        values = {key: torch.as_tensor(state[key], dtype=torch.float32).detach().cpu().clone()
                  for key in self.STATE}
        for key, value in values.items():
            if value.numel() != 1 or not math.isfinite(value.item()) or value.item() < 0:
                raise ValueError(f"{label}'s {key} must be one finite number >= 0, got {state[key]!r}")
        self.mean, self.updates = values["mean"].reshape(()), values["updates"].reshape(())
