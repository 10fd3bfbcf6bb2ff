#!/usr/bin/env bash
# Clone the committed HEAD into a temporary folder and run the README's two set-up commands
# there from scratch (a new venv, nothing reused), so that a green run cannot hide a missing
# install step or an uncommitted file. Run it before resolving an issue (CONTRIBUTING.md).
#
#   bash tools/fresh-clone.sh            # make demo, then make test
#   KEEP=1 bash tools/fresh-clone.sh     # keep the clone for a look afterwards
set -euo pipefail
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
if [ -n "$(git -C "$src" status --porcelain)" ]; then
  echo "fresh-clone: uncommitted changes in $src are not tested (only HEAD is cloned)" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/secfl-fresh.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; fi
# ../shared beside the clone, as CI lays it out.
if [ -d "$src/../shared" ]; then cp -r "$src/../shared" "$work/shared"; fi
git clone -q "$src" "$work/main"
cd "$work/main"
echo "fresh-clone: $(git log -1 --format='%h %s') in $work/main"
start=$SECONDS
make demo
echo "fresh-clone: make demo ok ($((SECONDS - start)) s)"
start=$SECONDS
make test
echo "fresh-clone: make test ok ($((SECONDS - start)) s)"
