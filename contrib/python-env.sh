#!/bin/sh
# Keep the Python environment of the SDK tests, the examples and the
# benchmarks, and print its python's path:
#
#   py=$(contrib/python-env.sh)
#   "$py" -m pytest sdk/python/tests
#
# A venv made from Debian's /usr/bin/python3 (python3-venv, from
# contrib/install-deps.sh) at ${BOXER_CACHE:-/var/cache/boxer}/venv, outside
# the checkout, holding the pinned contrib/requirements-test.txt and this
# checkout's sdk/python installed in editable mode ($BOXER_VENV names another
# place, for a second checkout tested beside this one). It is rebuilt only when
# the requirements, sdk/python/pyproject.toml, this script or the checkout's
# location change (a hash of them is kept in the venv), so a rerun prints the
# path at once and touches no network. Edits to the SDK's sources need no
# rebuild: the install is editable.
#
# Packages come from PyPI through pip, as the host's pip is configured.
# Progress goes to stderr; stdout is the path alone.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
CACHE=${BOXER_CACHE:-/var/cache/boxer}
venv=${BOXER_VENV:-$CACHE/venv}
PY=/usr/bin/python3

case ${1:-} in
-h | --help)
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0"
	exit 0
	;;
"") ;;
*)
	echo "python-env: unknown argument '$1' (see --help)" >&2
	exit 2
	;;
esac

[ -x "$PY" ] || {
	echo "python-env: $PY not found (run contrib/install-deps.sh)" >&2
	exit 1
}
"$PY" -c 'import ensurepip, venv' 2>/dev/null || {
	echo "python-env: Python's venv module is incomplete (run contrib/install-deps.sh for python3-venv)" >&2
	exit 1
}

# The checkout's path is part of the hash: the editable install points into it.
stamp=$({
	echo "$top"
	"$PY" --version
	cat contrib/python-env.sh contrib/requirements-test.txt sdk/python/pyproject.toml
} | sha256sum | cut -c1-32)

fresh() { [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.boxer-stamp" 2>/dev/null)" = "$stamp" ]; }

if fresh; then
	echo "$venv/bin/python"
	exit 0
fi

mkdir -p "$(dirname "$venv")"
# Two test runs at once would otherwise build the same venv together.
exec 9>"$venv.lock"
flock 9
if fresh; then
	echo "$venv/bin/python"
	exit 0
fi

echo "python-env: building $venv" >&2
rm -rf "$venv"
# A venv cannot be moved once made (its scripts hold absolute paths), so it
# is built in place; the stamp, written last, marks it complete.
"$PY" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check --no-input -q "$@" >&2; }
pip install -r contrib/requirements-test.txt
pip install --no-deps -e sdk/python
"$venv/bin/python" -c 'import boxer, httpx, pytest' >&2
echo "$stamp" >"$venv/.boxer-stamp"
echo "$venv/bin/python"
