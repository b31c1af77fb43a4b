"""The pixeltable-yolox configs with the loss kit (``yolox_focal.adapter.pixeltable_configs``) under
the path the command line names them by, kept for that:

    yolox train -c yolox_focal.pixeltable_configs:YoloxSFocal -d 8 -b 64 --fp16 -D box_loss=ciou
"""

from .adapter.pixeltable_configs import *  # noqa: F401,F403
from .adapter.pixeltable_configs import __all__  # noqa: F401
