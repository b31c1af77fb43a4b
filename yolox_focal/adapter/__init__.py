"""The YOLOX adapter: the loss core joined to an installed YOLOX (``flavour``: which one), by the head
(``head``), the exp mixin (``exp``), the exp's side of the settings written once for the package's
exps and a patched YOLOX tree (``exp_hook``), pixeltable-yolox's configs and the demo exp. It imports
the runtime only in the exp's ``get_trainer``."""
