#!/usr/bin/env bash
# Build the frozen one-folder app (Linux, macOS) and run its self-test:
#   packaging/build.sh [--cpu] [--no-self-test] [--no-venv] [--keep-all] [--dist DIR] [--work DIR]
# 1. makes a virtual environment (build/venv) and installs the project with the `packaging` extra
#    (--cpu first installs PyTorch's CPU-only build on Linux: a bundle without the CUDA libraries);
# 2. runs PyInstaller on packaging/image_alchemy.spec;
# 3. runs the frozen `ImageAlchemy --self-test`;
# 4. prints where the bundle is, its size, and the self-test result.
# --no-venv uses the python3 on PATH as it is (the project already installed with its extras);
# --keep-all builds without the exclusions of packaging/bundle_contents.py, to measure them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cpu=0 self_test=1 use_venv=1 keep_all=0
dist="$root/dist" work="$root/build/pyinstaller" venv="$root/build/venv"
python="${PYTHON:-python3}"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=1 ;;
    --self-test) self_test=1 ;;
    --no-self-test) self_test=0 ;;
    --no-venv) use_venv=0 ;;
    --keep-all) keep_all=1 ;;
    --dist) dist="$2"; shift ;;
    --work) work="$2"; shift ;;
    --venv) venv="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

fail() { echo "error: $*" >&2; exit 1; }
seconds() { date +%s; }

command -v "$python" >/dev/null || fail "$python not found; install Python 3.10 or newer, or set PYTHON=/path/to/python3"
if [ "$use_venv" = 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    echo "== making the build environment $venv"
    "$python" -m venv "$venv" || fail "could not make a virtual environment; on Debian/Ubuntu: apt install python3-venv"
  fi
  python="$venv/bin/python"
  "$python" -m pip install --upgrade pip >/dev/null
  if [ "$cpu" = 1 ]; then
    if [ "$(uname -s)" = Linux ]; then
      echo "== installing the CPU-only PyTorch build"
      "$python" -m pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu \
        || fail "could not install CPU-only PyTorch; check the network, or build without --cpu"
    else
      echo "== --cpu: PyTorch's default macOS build has no CUDA already"
    fi
  fi
  echo "== installing Image Alchemy with the packaging extra"
  "$python" -m pip install -e "$root[packaging]" || fail "pip could not install the project; see the messages above"
else
  [ "$cpu" = 0 ] || fail "--cpu installs PyTorch into the build environment; it cannot be combined with --no-venv"
  "$python" -c "import PyInstaller" 2>/dev/null || fail "PyInstaller is missing: $python -m pip install -e '.[packaging]'"
fi

mkdir -p "$work" "$dist"
log="$work/pyinstaller.log"
echo "== PyInstaller (log: $log)"
start=$(seconds)
(cd "$root" && ALCHEMY_KEEP_ALL="$keep_all" "$python" -m PyInstaller --noconfirm --clean \
  --distpath "$dist" --workpath "$work" packaging/image_alchemy.spec) >"$log" 2>&1 \
  || { tail -n 30 "$log" >&2; fail "PyInstaller failed; the whole log is $log"; }
build_s=$(( $(seconds) - start ))
grep "image_alchemy.spec: left out" "$log" || true

bundle="$dist/ImageAlchemy"
exe="$bundle/ImageAlchemy"
[ -x "$exe" ] || fail "PyInstaller finished but $exe is missing; see $log"
size=$(du -sh "$bundle" | cut -f1)
files=$(find "$bundle" -type f | wc -l | tr -d ' ')
echo "bundle:     $bundle"
echo "size:       $size in $files files$([ "$keep_all" = 1 ] && echo ' (no exclusions)')"
echo "build time: ${build_s} s"
[ -d "$dist/Image Alchemy.app" ] && echo "macOS app:  $dist/Image Alchemy.app"

status=0
if [ "$self_test" = 1 ]; then
  echo "== frozen self-test"
  start=$(seconds)
  "$exe" --self-test || status=$?
  echo "self-test:  $([ "$status" = 0 ] && echo passed || echo "FAILED (exit status $status)") in $(( $(seconds) - start )) s"
fi
exit "$status"
