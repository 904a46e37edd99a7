#!/bin/sh
# Fuzz Boxer's C parsers with libFuzzer (clang, ASan + UBSan) for a bounded
# time each: contrib/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Every tests/fuzz/fuzz_<name>.c is a target; its "fuzz-sources:" comment
# lists the project files it links besides common/.  Seeds come from
# tests/fuzz/corpus/<name>/; new inputs and crashes go to a temporary
# directory that is removed unless something crashed.
#
# contrib/fuzz.sh --api [SECONDS] fuzzes the HTTP API instead: schemathesis
# from openapi.yaml against a real stack (tests/openapi/test_fuzz.py) with a
# fresh random seed, for SECONDS (default 600).  contrib/test.sh runs that
# test with a fixed seed and derandomized generation, so that its verdict
# never depends on luck; this is the long random search beside it.  The
# seed is printed; BOXER_FUZZ_SEED=N replays it.
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = --api ]; then
	BOXER_FUZZ_RANDOM=1 BOXER_FUZZ_SECONDS=${2:-600}
	export BOXER_FUZZ_RANDOM BOXER_FUZZ_SECONDS
	BOXER_RUNSC=${BOXER_RUNSC:-$(contrib/build-runsc.sh)}
	export BOXER_RUNSC
	exec "$(contrib/python-env.sh)" -m pytest -rA -p no:cacheprovider tests/openapi/test_fuzz.py
fi
secs=${1:-30}
[ $# -gt 0 ] && shift
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}

command -v clang >/dev/null || { echo "fuzz: clang not found; run contrib/install-deps.sh" >&2; exit 1; }
if [ ! -f config.h ]; then
	./autogen.sh >/dev/null && ./configure --quiet
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/boxer-fuzz.XXXXXX")
keep=0
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT INT TERM

cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Werror=incompatible-pointer-types -I. $(pkg-config --cflags json-c libcrypto)"
libs="$(pkg-config --libs json-c libcrypto) -lm"
status=0
for t in $targets; do
	src=tests/fuzz/fuzz_$t.c
	[ -f "$src" ] || { echo "fuzz: no target $src" >&2; exit 2; }
	extra=$(sed -n 's|.*fuzz-sources:\(.*\)\*/.*|\1|p; s|.*fuzz-sources:\(.*\)$|\1|p' "$src" | head -n 1)
	# shellcheck disable=SC2086
	clang $cflags -o "$work/$t" "$src" $extra common/*.c $libs
	mkdir -p "$work/corpus-$t" "$work/crash-$t"
	[ -d "tests/fuzz/corpus/$t" ] && cp tests/fuzz/corpus/"$t"/* "$work/corpus-$t/" 2>/dev/null || true
	echo "== fuzz $t for ${secs}s"
	if ! "$work/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/crash-$t/" "$work/corpus-$t" >"$work/$t.log" 2>&1; then
		echo "fuzz: $t FAILED; crash inputs and log kept in $work" >&2
		tail -n 40 "$work/$t.log" >&2
		keep=1 status=1
	else
		# Coverage (cov: edges) and exec/s, so that runs and targets can be compared.
		grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$t.log" | tail -n 1
		grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$work/$t.log" | tr '\n' ' '
		echo
	fi
done
exit $status
