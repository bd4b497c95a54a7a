#!/usr/bin/env bash
# Install Arize Phoenix, pinned, into its own virtualenv outside the checkout, for the
# end-to-end tests in tests/e2e. The venv is cached and reused while its installed version
# is the pinned one. Prints the path of the `phoenix` executable as its only stdout line:
#
#   export ADA_GOVERNANCE_PHOENIX="$(bash .ci/phoenix.sh)"
set -euo pipefail

PHOENIX_VERSION="20.26.1"
venv="${ADA_PHOENIX_VENV:-$HOME/.cache/ada-governance/phoenix-venv}"
python="${ADA_PHOENIX_PYTHON:-python3}"

installed_version() {
  "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata
print(importlib.metadata.version("arize-phoenix"))
PY
}

# A venv is reused only once an install into it has finished (the marker) and it holds the
# pinned version; anything else is rebuilt from scratch.
if [ -x "$venv/bin/phoenix" ] && [ -f "$venv/.ada-phoenix-complete" ] \
  && [ "$(installed_version || true)" = "$PHOENIX_VERSION" ]; then
  echo "phoenix: arize-phoenix $PHOENIX_VERSION already installed in $venv" >&2
else
  if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
    echo "phoenix: $venv exists and is not a virtualenv; refusing to replace it" >&2
    exit 1
  fi
  echo "phoenix: installing arize-phoenix $PHOENIX_VERSION into $venv" >&2
  start=$SECONDS
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "arize-phoenix==$PHOENIX_VERSION" >&2
  touch "$venv/.ada-phoenix-complete"
  echo "phoenix: installed in $((SECONDS - start)) s" >&2
fi

echo "$venv/bin/phoenix"
