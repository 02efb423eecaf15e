#!/usr/bin/env bash
# The system packages a make target needs, installed from Debian's archive when they are missing.
#
# One script for a person and for CI alike: `make test` and `make run` call it, and `.ci/run` only calls
# `make test`, so a fresh machine needs no step that the README does not give. Already-installed
# packages cost one `command -v` each; nothing is downloaded then.
#
#   scripts/system-deps.sh test   what the test suite drives (README, "What `make test` installs")
#   scripts/system-deps.sh run    what `make run` needs beyond Python (nothing today)
set -euo pipefail

profile="${1:-}"
case "$profile" in
  # chromium: the dashboard's browser test (Playwright drives Debian's build; it never downloads one).
  # docker-compose: validates compose.yaml (`docker-compose config`; no container engine is needed).
  # nodejs, npm: a Node.js client built from protos/ alone (its two npm packages install on first run).
  test) wanted=("chromium:/usr/bin/chromium" "docker-compose:docker-compose" "nodejs:node" "npm:npm") ;;
  run) wanted=() ;;
  *) echo "usage: $0 test|run" >&2; exit 2 ;;
esac

missing=()
for item in ${wanted[@]+"${wanted[@]}"}; do
  package="${item%%:*}" program="${item#*:}"
  command -v "$program" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "make $profile needs these packages, and this machine has no apt-get: ${missing[*]}" >&2
  echo "install them with your system's package manager and run make $profile again" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "make $profile needs ${missing[*]}: run 'apt-get install -y ${missing[*]}' as root" >&2
    exit 1
  }
  sudo=(sudo)
fi

echo "installing Debian packages for make $profile: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
install() { "${sudo[@]+"${sudo[@]}"}" apt-get install -y -q "${missing[@]}" >/dev/null; }
# A fresh machine may have no package lists yet, or stale ones: refresh only when the first try fails.
if ! install 2>/dev/null; then
  "${sudo[@]+"${sudo[@]}"}" apt-get update -q >/dev/null
  install
fi
