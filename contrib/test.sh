#!/bin/bash
# The whole suite, as root on a Debian machine: installs what is missing,
# builds, runs the Check unit tests and the integration tests through the
# real nginx -> spawn-fcgi -> boxer-fcgi -> boxer-executor -> runsc stack, and fails if
# anything of any run is left on the machine.  Non-zero on any failure, of
# any command of any pipeline (pipefail).  With CI=true a skipped test is a
# failure, and contrib/quickstart.sh runs first and again at the end: its
# second run must change nothing and hello world must work.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

# What quickstart installs and serves; the second run must leave it as the
# first did.
quickstart_state() {
	sha256sum /usr/local/bin/boxer-image /usr/local/sbin/boxer-fcgi /usr/local/sbin/boxer-executor "${BOXER_CONFIG:-/etc/boxer/config.json}"
	curl -fsS http://127.0.0.1:5000/v2/_catalog
	echo
	for ref in python/manifests/3.11 busybox/manifests/latest python-pytest/manifests/3.11; do
		curl -fsS -o /dev/null -w "boxer/$ref %header{docker-content-digest}\n" \
			-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
			-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
			"http://127.0.0.1:5000/v2/boxer/$ref"
	done
}

# What a killed earlier run left is not this suite's doing: the check at the
# end fails only on what appeared since now.
leftovers_before=$(mktemp "${TMPDIR:-/tmp}/leftovers-before.XXXXXX")
trap 'rm -f "$leftovers_before"' EXIT
contrib/check-leftovers.sh --list >"$leftovers_before"

if [ "${CI:-}" = true ]; then
	echo "== quickstart (first run)"
	contrib/quickstart.sh
	quickstart_before=$(quickstart_state)
fi

contrib/install-deps.sh
# The test stacks' workers run as this user, as the quickstart's do.
contrib/ensure-user.sh boxer
BOXER_RUNSC=$(contrib/build-runsc.sh)
export BOXER_RUNSC

if [ ! -f Makefile ] || [ configure.ac -nt Makefile ] || [ Makefile.am -nt Makefile ]; then
	./autogen.sh
	./configure --quiet
fi
make -j"$(nproc)"

echo "== unit tests"
if ! make -j"$(nproc)" check; then
	tail -n 100 tests/unit/*.log || true
	exit 1
fi

# pytest's temporary directories live here and go when the suite ends.
PYTEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/boxer-pytest.XXXXXX")
trap 'rm -rf "$PYTEST_TMP" "$leftovers_before"' EXIT

echo "== integration tests"
# Debian's python3 with python3-pytest (installed above), whatever else is on PATH.
/usr/bin/python3 -m pytest -ra -p no:cacheprovider --basetemp="$PYTEST_TMP/integration" \
	tests/integration "$@"

echo "== the run, file, hostile-program, batch and streaming tests again, every run and batch in a pool's warm sandbox"
BOXER_TEST_WARM=1 /usr/bin/python3 -m pytest -ra -p no:cacheprovider \
	--basetemp="$PYTEST_TMP/integration-warm" tests/integration/test_run.py \
	tests/integration/test_files.py tests/integration/test_hostile.py \
	tests/integration/test_batch.py tests/integration/test_stream.py "$@"

echo "== Python SDK and examples, against the real stack"
venv_python=$(contrib/python-env.sh)
"$venv_python" -m pytest -ra -p no:cacheprovider --basetemp="$PYTEST_TMP/sdk" sdk/python/tests

echo "== OpenAPI: the document, responses against it, schemathesis (fixed seed), Swagger UI"
"$venv_python" -m pytest -ra -p no:cacheprovider --basetemp="$PYTEST_TMP/openapi" tests/openapi

echo "== fuzzing the C parsers"
contrib/fuzz.sh "${BOXER_FUZZ_SECS:-10}"

echo "== the suite again, under ASan + UBSan with leak detection"
contrib/test-asan.sh

if [ "${CI:-}" = true ]; then
	echo "== quickstart (second run: changes nothing, hello world works)"
	contrib/quickstart.sh
	quickstart_after=$(quickstart_state)
	if [ "$quickstart_before" != "$quickstart_after" ]; then
		echo "test: the second quickstart changed what the first installed:" >&2
		diff <(echo "$quickstart_before") <(echo "$quickstart_after") >&2 || true
		exit 1
	fi
	hello=$(curl -fsS -X POST http://127.0.0.1:8080/run -H 'Content-Type: application/json' \
		-d '{"image": "localhost:5000/boxer/python:3.11", "cmd": ["python3", "-c", "print(\"hello world\")"]}')
	jq -e '.stdout == "hello world\n" and .exit_code == 0' <<<"$hello" >/dev/null ||
		{ echo "test: hello world after the second quickstart: $hello" >&2; exit 1; }
fi

echo "== leftovers"
rm -rf "$PYTEST_TMP"
contrib/check-leftovers.sh --since "$leftovers_before"
