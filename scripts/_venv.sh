# Sourced by the scripts: creates .venv on first use and installs the project with the given extras.
# Re-runs are quick: pip only installs what changed.
set -euo pipefail
VENV="${NOTIFIER_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -m pip install -q -e ".[${NOTIFIER_EXTRAS:-test}]"
PY="$VENV/bin/python"
