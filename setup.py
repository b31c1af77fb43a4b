"""yolox-focal: focal-loss objectness for YOLOX.

``yolox`` is deliberately not in install_requires: its PyPI release pins onnx==1.8.1 and
onnxruntime==1.8.0, which have no builds for current Pythons, so pip would fail to resolve it even
when YOLOX is already installed. Install YOLOX first (see README); importing yolox_focal without
it says how.
"""

from setuptools import find_packages, setup

setup(
    name="yolox-focal",
    version="0.1.0",
    description="Focal-loss objectness branch for YOLOX detectors, as a package or a patch series",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["yolox_focal", "yolox_focal.*"]),
    python_requires=">=3.8",
    install_requires=["torch>=1.7", "torchvision"],
    extras_require={"test": ["pytest"]},
)
