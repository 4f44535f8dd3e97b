#!/usr/bin/env bash
# Install vrshare into ./.venv with what it needs from Debian.
#   bash tools/install.sh          the demo (renderer, scenes, audio, video capture)
#   bash tools/install.sh --test   the demo plus the test suite's needs
# Idempotent: Debian packages and the venv are only installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

extra=demo
[[ "${1:-}" == "--test" ]] && extra=test

# EGL + Mesa (headless OpenGL 4.5 via llvmpipe), PortAudio (live audio), the OpenXR
# headers and gcc (the test runtime in tools/xrsim), Xvfb + GLX (window and GLX tests),
# python3-venv (Debian splits it out).
debs=(libegl1 libgl1-mesa-dri libegl-mesa0 libportaudio2 python3-venv)
[[ $extra == test ]] && debs+=(gcc libopenxr-dev xvfb libgl1 libglx-mesa0)

missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras=$extra
[[ $extra == test ]] && extras=test,sweep,optical  # sweep tests: a local Ray; optical: cv2
.venv/bin/python -m pip install -q -e ".[$extras]"
