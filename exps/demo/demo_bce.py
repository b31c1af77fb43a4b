# The BCE baseline of the demo: demo_focal.py with YOLOX's own BCE objectness, nothing else changed.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # YOLOX's exp loader does this too
from demo_focal import Exp as FocalDemoExp  # noqa: E402


class Exp(FocalDemoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
        self.obj_loss = "bce"
