#!/usr/bin/env bash
# Build the frozen one-folder app (Linux, macOS) from its lock and run its self-test:
#   packaging/build.sh [--cpu] [--relock] [--no-self-test] [--no-venv] [--keep-all] [--dist DIR] [--work DIR]
# 1. picks this platform's lock (packaging/locks/<platform>-py<XY>.txt; packaging/lock.py says which)
#    and makes the build environment (build/venv) from it: `pip install --require-hashes -r LOCK`,
#    then the project itself without dependencies; the environment is remade when the lock changes;
# 2. runs PyInstaller on packaging/image_alchemy.spec;
# 3. runs the frozen `ImageAlchemy --self-test`;
# 4. prints where the bundle is, its size, and the self-test result.
# --relock first re-resolves the newest allowed versions (uv, with hashes) into a candidate lock,
#    builds and self-tests from it, and only when the self-test passes writes it into packaging/locks/.
# --cpu builds from the CPU-only PyTorch lock on Linux (a bundle without the CUDA libraries).
# --no-venv uses the python3 on PATH as it is (not the lock: a quick local try, never a release);
# --keep-all builds without the exclusions of packaging/bundle_contents.py, to measure them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cpu=0 self_test=1 use_venv=1 keep_all=0 relock=0
dist="$root/dist" work="$root/build/pyinstaller" venv="$root/build/venv"
python="${PYTHON:-python3}"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=1 ;;
    --relock) relock=1 ;;
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
[ "$relock" = 0 ] || [ "$self_test" = 1 ] || fail "--relock writes a lock only after the frozen self-test passes; drop --no-self-test"

command -v "$python" >/dev/null || fail "$python not found; install Python 3.10 or newer, or set PYTHON=/path/to/python3"
lock_tool="$root/packaging/lock.py"
cpu_flag=$([ "$cpu" = 1 ] && echo --cpu || true)
if [ "$use_venv" = 1 ]; then
  if [ "$relock" = 1 ]; then
    tools="$root/build/lock-tools"
    [ -x "$tools/bin/python" ] || "$python" -m venv "$tools" || fail "could not make a virtual environment; on Debian/Ubuntu: apt install python3-venv"
    "$tools/bin/python" -m pip install --quiet "uv>=0.5" || fail "could not install uv, the resolver; check the network"
    lock="$root/build/lock-candidate.txt"
    echo "== resolving a new lock into $lock"
    "$tools/bin/python" "$lock_tool" resolve $cpu_flag --out "$lock" >/dev/null || exit 1
  else
    lock=$("$python" "$lock_tool" path $cpu_flag) || exit 1
  fi
  stamp=$("$python" "$lock_tool" stamp "$lock")
  if [ "$(cat "$venv/.lock-stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== making the build environment $venv from $(basename "$lock")"
    rm -rf "$venv"
    "$python" -m venv "$venv" || fail "could not make a virtual environment; on Debian/Ubuntu: apt install python3-venv"
    "$venv/bin/python" -m pip install --require-hashes --no-deps -r "$lock" \
      || fail "pip could not install the locked packages from $lock; see the messages above"
    "$venv/bin/python" -m pip install --no-deps -e "$root" >/dev/null || fail "pip could not install the project"
    echo "$stamp" > "$venv/.lock-stamp"
  else
    echo "== build environment $venv matches $(basename "$lock")"
  fi
  python="$venv/bin/python"
else
  [ "$cpu" = 0 ] || fail "--cpu picks the CPU-only lock for the build environment; it cannot be combined with --no-venv"
  [ "$relock" = 0 ] || fail "--relock builds from a new build environment; it cannot be combined with --no-venv"
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
if [ "$relock" = 1 ]; then
  if [ "$status" = 0 ]; then
    final=$("$python" "$lock_tool" target $cpu_flag)
    mv "$lock" "$final"
    echo "lock:       wrote $final (the build from it passed its self-test)"
  else
    echo "lock:       unchanged; the candidate $lock failed the self-test" >&2
  fi
fi
exit "$status"
