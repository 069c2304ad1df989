#!/usr/bin/env bash
# Start Image Alchemy from its source folder (Linux, macOS; the .desktop and .command files call
# this). The first start makes a private virtual environment (<source>/.venv) and installs the app
# into it, showing progress and writing <data folder>/logs/install.log; later starts open the app
# at once. A failed install says what to do, and the next start tries again.
#   launch.sh [--dry-run] [--install-desktop] [ARGS...]   (ARGS go to the app, e.g. --demo)
# --dry-run says what would happen and changes nothing. --install-desktop adds Image Alchemy to
# the Linux applications menu. Settings: PYTHON (interpreter for the venv), IMAGE_ALCHEMY_VENV,
# IMAGE_ALCHEMY_HOME (data folder).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${IMAGE_ALCHEMY_VENV:-$root/.venv}"
marker="$venv/.image-alchemy-installed"

if [ -n "${IMAGE_ALCHEMY_HOME:-}" ]; then
  data="$IMAGE_ALCHEMY_HOME"
elif [ "$(uname -s)" = Darwin ]; then
  data="$HOME/Library/Application Support/ImageAlchemy"
else
  data="${XDG_DATA_HOME:-$HOME/.local/share}/ImageAlchemy"
fi
log="$data/logs/install.log"

dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1; shift ;;
  --install-desktop)
    apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
    mkdir -p "$apps"
    sed -e "s|^Exec=.*|Exec=\"$here/launch.sh\"|" -e "s|^Icon=.*|Icon=$root/resources/icons/app.png|" \
      "$here/image-alchemy.desktop" >"$apps/image-alchemy.desktop"
    echo "Added Image Alchemy to the applications menu: $apps/image-alchemy.desktop"
    exit 0 ;;
esac

# Tell the user, in the terminal or, when started from a menu or file manager, in a desktop note.
say() {
  echo "$1"
  if [ ! -t 1 ] && command -v notify-send >/dev/null 2>&1; then notify-send "Image Alchemy" "$1" || true; fi
}
fail() {
  local message="Image Alchemy could not be installed: $1
What to do: $2
The full log is $log; after fixing the cause, start Image Alchemy again."
  echo "error: $message" >&2
  if [ ! -t 2 ] && command -v zenity >/dev/null 2>&1; then zenity --error --text="$message" || true; fi
  exit 1
}

find_python() {
  local candidate
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# The install is current when the marker holds the checksum of pyproject.toml (a changed
# dependency list after an update reinstalls).
wanted="$(cksum <"$root/pyproject.toml" | cut -d' ' -f1)"
installed="$(cat "$marker" 2>/dev/null || echo none)"
command=("$venv/bin/python" "$root/main.py" "$@")

if [ "$dry_run" = 1 ]; then
  python="$(find_python || echo 'none found (Python 3.10 or newer is needed)')"
  echo "source:  $root"
  echo "venv:    $venv"
  echo "python:  $python"
  if [ "$installed" = "$wanted" ]; then
    echo "install: not needed (installed for this pyproject.toml)"
  else
    echo "install: needed; would run: $python -m venv $venv && pip install -e $root (log: $log)"
  fi
  echo "start:   ${command[*]}"
  exit 0
fi

if [ "$installed" != "$wanted" ]; then
  mkdir -p "$(dirname "$log")"
  python="$(find_python)" || fail "no Python 3.10 or newer was found" \
    "install Python 3.10+ (python.org, or your package manager), then start again"
  say "First start: installing Image Alchemy into $venv. This downloads PyTorch (about 2 GB) and takes a few minutes; progress is in $log"
  echo "--- $(date) installing with $python ($("$python" --version 2>&1))" >>"$log"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >>"$log" 2>&1 || fail "could not make a virtual environment in $venv" \
      "on Debian/Ubuntu install python3-venv (sudo apt install python3-venv)"
  fi
  "$venv/bin/python" -m pip install --upgrade pip >>"$log" 2>&1 \
    || echo "note: could not upgrade pip; installing with the venv's own pip" | tee -a "$log"
  # Progress on screen (one line per package), everything in the log.
  set +e
  "$venv/bin/python" -m pip install -e "$root" 2>&1 | tee -a "$log" | grep --line-buffered -E '^(Collecting|Installing|Successfully)'
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" != 0 ]; then
    tail -n 5 "$log" >&2
    fail "pip could not install the app (exit status $status)" \
      "check the internet connection and free disk space (about 6 GB), or delete $venv"
  fi
  echo "$wanted" >"$marker"
  say "Installed. Starting Image Alchemy…"
fi
exec "${command[@]}"
