#!/bin/bash
# The whole suite again (unit, integration, SDK, OpenAPI), against an
# AddressSanitizer + UBSan build with leak detection on.  The workers live
# long, so a leak per request adds up; any ASan, LSan or UBSan report fails
# the run.
#
# The build lives outside the checkout (a copy of the working tree, so the
# in-tree build is left alone) and is rebuilt incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
CACHE=${BOXER_CACHE:-/var/cache/boxer}
src="$CACHE/asan-build"

mkdir -p "$src"
# Tracked and untracked-but-not-ignored files: what the suite would build.
contrib/copy-tree.sh "$src"
cd "$src"
if [ ! -f Makefile ] || [ configure.ac -nt Makefile ] || [ Makefile.am -nt Makefile ]; then
	./autogen.sh >/dev/null 2>&1
	./configure --quiet --enable-sanitizers CFLAGS="-g -O1"
	# A target's flags may have changed (make does not track them): every
	# object is built again.
	make clean >/dev/null
fi
make -j"$(nproc)" >/dev/null
# The unit tests under the sanitizers too (Check forks each test; that is fine).
make -j"$(nproc)" check >/dev/null || { tail -n 80 tests/unit/*.log; exit 1; }
cd "$top"

reports=$(mktemp -d "${TMPDIR:-/tmp}/boxer-asan.XXXXXX")
trap 'rm -rf "$reports"' EXIT
# The workers run as the boxer user: their reports must land here too.
chmod 1777 "$reports"
# Every sanitized process writes its report to a file of its own here.
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
export LSAN_OPTIONS="log_path=$reports/lsan"
export BOXER_BUILD_DIR="$src"
BOXER_RUNSC=${BOXER_RUNSC:-$(contrib/build-runsc.sh)}
export BOXER_RUNSC
export BOXER_LOAD_RUNS=${BOXER_LOAD_RUNS:-200}

status=0
/usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp="$reports/pytest" tests/integration "$@" ||
	status=1
# The SDK and OpenAPI suites drive the same sanitized server differently.
venv_python=$(contrib/python-env.sh)
"$venv_python" -m pytest -q -p no:cacheprovider --basetemp="$reports/pytest-sdk" sdk/python/tests ||
	status=1
"$venv_python" -m pytest -q -p no:cacheprovider --basetemp="$reports/pytest-openapi" tests/openapi ||
	status=1
rm -rf "$reports"/pytest*

if [ -n "$(ls -A "$reports")" ]; then
	echo "test-asan: sanitizer reports:" >&2
	for f in "$reports"/*; do
		echo "--- $f" >&2
		head -n 60 "$f" >&2
	done
	exit 1
fi
[ "$status" = 0 ] || exit 1
echo "test-asan: no sanitizer reports"
