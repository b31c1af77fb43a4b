"""The state of the losses that keep a running mean of a batch statistic (``wiou_v3``: the mean IoU
loss; ``slide_ema``: the mean IoU of the positives), kept the way declare.py says a loss keeps state.

The mean is a plain tensor attribute, not a buffer, so the head's state dict stays YOLOX's; it
moves only in training mode and without gradient; each batch's statistic is summed with its count
over the processes of a distributed run (:func:`all_reduce_sum`), so every process holds the same
mean (DDP's buffer broadcast would impose rank 0's, and a mean of per-process means would weigh a
process with few boxes like one with many). Every process must therefore call the loss on every
batch, with no boxes too, as YOLOX's ``get_losses`` does. The state belongs to the instance: two
heads, or two branches, never share it (copies keep it as a class attribute, shared by all).

Needs only torch.
"""

import math

import torch

from .declare import KitLoss, all_reduce_sum

__all__ = ["RunningMeanLoss"]


class RunningMeanLoss(KitLoss):
    """Base of a loss keeping ``mean``, the running mean of a batch statistic, and ``updates``, how
    many batches moved it. Subclasses declare ``initial`` (the mean before the first batch) and
    ``warm_start``: when true, the mean is the plain average of the batches seen until there are
    ``1 / momentum`` of them (the first batch sets it), then the exponential running mean; when
    false it is the exponential running mean from ``initial`` on, as the paper of ``wiou_v3`` has it.
    Subclasses have a ``momentum`` parameter."""

    stateful = True
    initial = 1.0
    warm_start = False
    STATE = ("mean", "updates")

    def __init__(self, **values):
        super().__init__(**values)
        self.mean = torch.tensor(float(self.initial))
        self.updates = torch.tensor(0.0)

    def update_mean(self, total, count):
        """Move the mean with this batch's statistic, ``total / count`` (0-dim tensors: its sum and
        the number of its elements, summed over every process), when training; return the mean to
        use for this batch, on ``total``'s device. A batch without elements leaves it as it is."""
        mean = self.mean.to(total.device)
        if not self.training:
            return mean
        with torch.no_grad():
            total, count = all_reduce_sum(torch.stack([total.detach(), count.detach()]).float())
            updates = self.updates.to(total.device)
            momentum = self.values["momentum"]
            if self.warm_start:
                momentum = (1 / (updates + 1)).clamp_(min=momentum)
            # mean + momentum (total / count - mean), written so that a batch without elements
            # (total = count = 0) leaves the mean as it is, without a branch on the device's values
            self.mean = mean + momentum * (total - mean * count) / count.clamp(min=1)
            self.updates = updates + (count > 0).float()
        return self.mean

    def loss_state(self):
        return {"mean": self.mean.detach().cpu().clone(), "updates": self.updates.detach().cpu().clone()}

    def load_loss_state(self, state):
        if set(state) != set(self.STATE):
            raise ValueError(f"the {self.name} loss keeps {', '.join(self.STATE)}; got {sorted(state)}")
        values = {key: torch.as_tensor(state[key], dtype=torch.float32).detach().cpu().clone()
                  for key in self.STATE}
        for key, value in values.items():
            if value.numel() != 1 or not math.isfinite(value.item()) or value.item() < 0:
                raise ValueError(f"the {self.name} loss's {key} must be one finite number >= 0, got "
                                 f"{state[key]!r}")
        self.mean, self.updates = values["mean"].reshape(()), values["updates"].reshape(())

    def extra_repr(self):
        return super().extra_repr() + f", mean={self.mean.item():.4g}, updates={int(self.updates.item())}"
