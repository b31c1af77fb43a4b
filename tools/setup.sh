#!/usr/bin/env bash
# Sets up what yolox-focal needs in the active Python (a venv is fine) and installs this repository
# in editable mode. It installs only what is missing and never replaces an installed torch,
# torchvision or yolox (Megvii's release or GitHub main, or pixeltable-yolox): it says what it
# found and what it installed. Pinned versions are used only where nothing is installed;
# YOLOX_FOCAL_PIN=1 installs the pins over whatever is there; YOLOX_FOCAL_EXTRAS=tracking adds the
# optional MLflow and W&B, YOLOX_FOCAL_EXTRAS=cluster Ray, both "tracking,cluster" (each only where
# missing: an installed one is kept). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
TORCH_PIN="torch==2.14.1"
TORCHVISION_PIN="torchvision==0.29.1"
YOLOX_PIN="yolox==0.3.0"
FORCE_PINS=${YOLOX_FOCAL_PIN:-0}
PIP=("$PY" -m pip install -q)

# "<module> <version>" for each importable module among the arguments, "<module> -" for the others;
# the version is the installed distribution's (pixeltable-yolox for its yolox), else the module's.
probe() {
  "$PY" - "$@" <<'PYTHON'
import importlib.metadata as md, importlib.util, sys
DISTS = {"yolox": ("pixeltable-yolox", "yolox"), "cv2": ("opencv-python", "opencv-python-headless",
         "opencv-contrib-python", "opencv-contrib-python-headless")}
for module in sys.argv[1:]:
    version = "-"
    if importlib.util.find_spec(module) is not None:
        version = "present"
        for dist in DISTS.get(module, (module,)):
            try:
                version = f"{md.version(dist)}" + (" (pixeltable-yolox)" if dist == "pixeltable-yolox" else "")
                break
            except md.PackageNotFoundError:
                pass
    print(module, version)
PYTHON
}
version_of() { probe "$1" | cut -d' ' -f2-; }

echo "yolox-focal set-up in $("$PY" -c 'import sys; print(sys.executable)')"
"${PIP[@]}" setuptools wheel
installed=()

# torch first (yolox compiles a C++ op against it), then torchvision built for that torch.
torch_version=$(version_of torch)
if [[ $torch_version == - || $FORCE_PINS == 1 ]]; then
  before=$(probe torch torchvision)
  "${PIP[@]}" "$TORCH_PIN" "$TORCHVISION_PIN"
  [[ $(probe torch torchvision) == "$before" ]] || installed+=("$TORCH_PIN" "$TORCHVISION_PIN")
else
  echo "found torch $torch_version: kept"
  vision_version=$(version_of torchvision)
  if [[ $vision_version == - ]]; then
    # A torchvision that works with the torch that is there: pip may not replace it.
    "${PIP[@]}" torchvision "torch==${torch_version}"
    installed+=("torchvision $(version_of torchvision)")
  else
    echo "found torchvision $vision_version: kept"
  fi
fi

yolox_version=$(version_of yolox)
if [[ $FORCE_PINS == 1 && $yolox_version == *pixeltable-yolox* ]]; then
  # Both install as `yolox`: the pinned one must not land on top of pixeltable-yolox's files.
  echo "YOLOX_FOCAL_PIN=1: uninstalling pixeltable-yolox ${yolox_version% (*} for $YOLOX_PIN"
  "$PY" -m pip uninstall -q -y pixeltable-yolox
fi
if [[ $yolox_version == - || $FORCE_PINS == 1 ]]; then
  # The PyPI release pins onnx==1.8.1 and onnxruntime==1.8.0, which have no builds for current
  # Pythons: install it without its pins; the packages it really uses follow below.
  if [[ $yolox_version != 0.3.0 ]]; then
    "${PIP[@]}" --no-deps --no-build-isolation --force-reinstall "$YOLOX_PIN"
    installed+=("$YOLOX_PIN")
  fi
else
  echo "found yolox $yolox_version: kept"
fi

# Every later install keeps torch, torchvision and yolox as they are now.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PY" - > "$constraints" <<'PYTHON'
import importlib.metadata as md
for dist in ("torch", "torchvision", "yolox", "pixeltable-yolox"):
    try:
        print(f"{dist}=={md.version(dist)}")
    except md.PackageNotFoundError:
        pass
PYTHON
PIP+=(-c "$constraints")
if "$PY" -c "from yolox_focal.adapter import flavour; import sys; sys.exit(flavour.flavour() != 'megvii-pypi')"
then
  PIP+=(--no-warn-conflicts)
  echo "note: yolox 0.3.0 from PyPI declares onnx==1.8.1 and onnxruntime==1.8.0, which do not install on" \
       "current Pythons; it runs with current ones, so pip's warning about those pins is turned off"
fi

# What YOLOX and yolox-focal import at run time, the tests, plots and ONNX export: only the missing.
declare -A PACKAGE=([loguru]=loguru [cv2]=opencv-python-headless [pycocotools]=pycocotools
  [tabulate]=tabulate [tqdm]=tqdm [thop]=thop [psutil]=psutil [tensorboard]=tensorboard [ninja]=ninja
  [matplotlib]=matplotlib [pytest]=pytest [onnx]=onnx [onnxruntime]=onnxruntime [onnxsim]=onnxsim)
# YOLOX_FOCAL_EXTRAS=tracking (CI sets it): also MLflow and W&B, for -l mlflow / -l wandb and --mlflow.
if [[ ${YOLOX_FOCAL_EXTRAS:-} == *tracking* ]]; then PACKAGE+=([mlflow]="mlflow>=3" [wandb]=wandb); fi
# YOLOX_FOCAL_EXTRAS=cluster (CI sets it): also Ray, for tools/ablate.py --ray.
if [[ ${YOLOX_FOCAL_EXTRAS:-} == *cluster* ]]; then PACKAGE+=([ray]="ray>=2.9"); fi
missing=()
while read -r module version; do
  [[ $version == - ]] && missing+=("${PACKAGE[$module]}")
done < <(probe "${!PACKAGE[@]}")
if ((${#missing[@]})); then
  "${PIP[@]}" "${missing[@]}"
  installed+=("${missing[@]}")
fi

"${PIP[@]}" --no-deps -e .
if ((${#installed[@]})); then echo "installed: ${installed[*]}"; else echo "installed: nothing new"; fi
"$PY" -c "import yolox_focal, yolox, torch; from yolox_focal.adapter import flavour
print('yolox-focal', yolox_focal.__version__, '| yolox', flavour.flavour(), '| torch', torch.__version__)"
