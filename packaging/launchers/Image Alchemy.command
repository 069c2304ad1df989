#!/usr/bin/env bash
# macOS: double-click in Finder. Terminal opens and shows the first-start install (a few minutes,
# logged to ~/Library/Application Support/ImageAlchemy/logs/install.log); later starts are quick.
# Finder may ask once to allow it: right-click → Open.
exec "$(cd "$(dirname "$0")" && pwd)/launch.sh" "$@"
