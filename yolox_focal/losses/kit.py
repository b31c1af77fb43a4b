"""A loss kit: the loss each branch of a YOLOX head computes, built from the declared settings.

``LossKit(**settings)`` holds three declared loss modules, ``obj``, ``cls`` and ``box`` (one
``KitLoss`` each, with its parameters, weight, label smoothing or box modifiers), each called the
way YOLOX's ``get_losses`` calls its own loss modules (element-wise, before the sum and the division
by the number of foreground anchors). With no setting given it is YOLOX's: BCE-with-logits for
objectness and classification, YOLOX's IoU loss for boxes, all weights 1, and YOLOX's own label
assignment. Another ``assigner`` (or similarity) gives it ``assign``, the assignment of one image
(``assign.py``), which the head calls through :meth:`LossKit.get_assignments` in place of YOLOX's
SimOTA; at the default ``assign`` is None and the head calls YOLOX's own.

Before each batch the head hands the kit the batch's images (:meth:`LossKit.start_batch`: a loss may
read the input size), and the trainer the training progress (:meth:`LossKit.set_progress`: a loss
whose schedule follows training, such as ``uiou``, reads it).

It has no parameters or buffers, so a head that carries one has YOLOX's state dict. A loss that
keeps state (a running mean) hands it out through :meth:`LossKit.loss_state`, which the trainers
save beside the model's state dict and give back with :meth:`LossKit.load_loss_state`.

Needs only torch: the patch series copies this module into a YOLOX tree.
"""

from torch import nn

from .assign import assigner_function, yolox_assignments
from .declare import LOSSES, PROGRESS
from .settings import (ASSIGNMENT, BRANCH_OPTIONS, BRANCHES, CheckedSettings, all_settings, option_setting,
                       resolve_settings, yolox_settings)

__all__ = ["LossKit"]


class LossKit(nn.Module):
    """The three branch losses for the given settings (see ``yolox_focal.losses.settings``); a setting
    not given takes YOLOX's value. ``LossKit(**settings)`` checks them with the gate
    (``resolve_settings``: bad settings raise one-line ``ValueError``s); ``LossKit(checked)`` takes
    what the gate has returned as it is."""

    def __init__(self, checked=None, /, **settings):
        super().__init__()
        if checked is None:
            checked = resolve_settings(settings)
        elif settings or not isinstance(checked, CheckedSettings):
            raise TypeError("LossKit takes settings by keyword, or the CheckedSettings that resolve_settings returns")
        self.settings = values = checked
        declared = all_settings()
        for branch in BRANCHES:
            loss = values[f"{branch}_loss"]
            params = {s.arg: values[s.name] for s in declared if s.branch == branch and s.loss == loss}
            options = {o: values[option_setting(branch, o)] for o in BRANCH_OPTIONS[branch]}
            setattr(self, branch, LOSSES[loss](**params, **options))
        assigner = values["assigner"]
        params = {s.arg: values[s.name] for s in declared if s.branch == ASSIGNMENT and s.loss == assigner}
        # None for simota with the IoU: the head keeps YOLOX's own get_assignments
        self.assign = assigner_function(assigner, values["assigner_similarity"], values["assigner_nwd_constant"],
                                        **params)
        self.input_size = None
        self.progress = None

    def branch_losses(self):
        """{branch: its loss module}."""
        return {branch: getattr(self, branch) for branch in BRANCHES}

    def get_assignments(self, **arguments):
        """The label assignment of one image, from YOLOXHead.get_assignments' arguments by name
        (``assign.YOLOX_ASSIGNMENT_ARGUMENTS``), in place of YOLOX's SimOTA: for a head whose
        ``self.assign`` is not None (another assigner than simota with the IoU)."""
        if self.assign is None:
            raise RuntimeError("this loss kit assigns with YOLOX's own get_assignments; call that")
        return yolox_assignments(self.assign, **arguments)

    def start_batch(self, imgs):
        """Called by the head before each batch's losses with the batch's images ``(B, C, H, W)``
        (None where the YOLOX does not hand them over): losses that read the training input size
        (``needs = ("input_size",)``) take it from here, as multiscale training changes it."""
        self.input_size = None if imgs is None else tuple(imgs.shape[-2:])
        for loss in self.branch_losses().values():
            if "input_size" in loss.needs:
                loss.batch_context = dict(loss.batch_context, input_size=self.input_size)

    def set_progress(self, fraction):
        """Called by the trainer before each training iteration with the training progress,
        ``(epoch * iters_per_epoch + iter) / (max_epoch * iters_per_epoch)``: 0 at the first iteration,
        towards 1 at the end. Losses whose schedule follows training (``needs = ("progress",)``, such
        as ``uiou``) read it from here; a training step of such a loss without it raises one line."""
        PROGRESS.check("the training progress", fraction)
        self.progress = float(fraction)
        for loss in self.branch_losses().values():
            if "progress" in loss.needs:
                loss.batch_context = dict(loss.batch_context, progress=self.progress)

    @property
    def needs_progress(self):
        """Whether a loss of this kit reads the training progress (:meth:`set_progress`)."""
        return any("progress" in loss.needs for loss in self.branch_losses().values())

    def loss_state(self):
        """The losses' state, ``{"<branch>.<loss>.<key>": tensor}`` (empty where no loss keeps any),
        to save beside the model's state dict."""
        return {f"{branch}.{loss.name}.{key}": value for branch, loss in self.branch_losses().items()
                for key, value in loss.loss_state().items()}

    def load_loss_state(self, state):
        """Take back what :meth:`loss_state` gave; a one-line ``ValueError`` if it is another kit's."""
        expected, given = sorted(self.loss_state()), sorted(state)
        if given != expected:
            raise ValueError(f"the loss state {given or '(none)'} does not fit this loss kit, which keeps "
                             f"{expected or 'no state'}: resume with the loss settings it was saved with")
        for branch, loss in self.branch_losses().items():
            prefix = f"{branch}.{loss.name}."
            loss.load_loss_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def changed(self):
        """{setting: value} for the settings that differ from YOLOX's."""
        yolox = yolox_settings()
        return {k: v for k, v in self.settings.items() if v != yolox[k]}
