"""The YOLOX adapter: what joins the loss core (``yolox_focal.losses``) to an installed YOLOX.

- ``flavour``: which YOLOX is installed (Megvii's PyPI release or GitHub main, pixeltable-yolox)
  and the names the package uses from it;
- ``head``: ``FocalYOLOXHead``, YOLOX's head computing its losses with a ``LossKit``;
- ``exp_hook``: the exp's side of the loss settings (attributes, command line, the head's kit),
  written once for the exps here and for a YOLOX tree patched by ``patches/``;
- ``exp``: ``FocalExpMixin`` for any YOLOX exp; ``pixeltable_configs``: pixeltable-yolox's configs
  with it; ``demo_exp``: the demo experiment's settings.

Needs an installed YOLOX (but ``exp_hook`` and ``demo_exp``); importing this package imports none of
its modules. It imports the runtime (``yolox_focal.runtime``) only in the exp's ``get_trainer``.
"""
