#!/bin/bash
# Does the suite catch a broken protection?  For every row of the README's
# "What holds" table and every limit, a named one-line mutation of the
# source removes the protection; each is applied alone to a scratch copy of
# the tree (outside the checkout, like contrib/test-asan.sh), built, and the
# test that should notice is run against that build.  A mutation is caught
# when the test fails; one that does not apply exactly once, does not
# build, or leaves its test passing (or skipped) is missed.
#
#   contrib/mutation-check.sh [NAME...]     (as root, like contrib/test.sh)
#
# Prints one line per mutation and finally "N/M mutations caught"; exits
# non-zero when any is missed.  First every named test runs against the
# unmutated scratch build and must pass, so that a catch means something.
# Not part of contrib/test.sh: it rebuilds once per mutation.  A caught
# mutation may leave behind what its protection removes (an /output tmpfs,
# a test directory); the machine-wide leftover check runs at the end and
# fails the command if so.
# BOXER_MUTATION_PORT (default 28090) is the BOXER_TEST_PORT of the tests:
# its addresses differ from those of the suite on 18080, so both may run at once.
#
# Rows of "What holds" without a mutation here, and why: /output symlinks,
# FIFOs and devices (held twice over: an lstat type check and an openat2
# that refuses symlinks; no one line removes both); daemons outliving the
# command, /dev/random, closing stdout (runsc's own behaviour, no Boxer
# line); raw sockets and mount (no capabilities and uid 65534: the uid
# mutation below); image layers with '..', absolute paths and links out
# (openat2 RESOLVE_IN_ROOT and a path check, two lines); restarting under
# load (atomic renames in several places).  cgroup v2 (memory.max,
# memory.events) is proven by contrib/test-vm.sh, not on this hybrid host.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
CACHE=${BOXER_CACHE:-/var/cache/boxer}
src="$CACHE/mutation-build"
export BOXER_RUNSC=${BOXER_RUNSC:-$(contrib/build-runsc.sh)}
export BOXER_TEST_PORT=${BOXER_MUTATION_PORT:-28090}
export BOXER_BUILD_DIR="$src"
export BOXER_VENV_PYTHON
BOXER_VENV_PYTHON=$(contrib/python-env.sh)

mkdir -p "$src"
# Tracked and untracked-but-not-ignored files: what the suite would build.
contrib/copy-tree.sh "$src"
(
	cd "$src"
	if [ ! -f Makefile ] || [ configure.ac -nt Makefile ] || [ Makefile.am -nt Makefile ]; then
		./autogen.sh >/dev/null 2>&1
		./configure --quiet
		make clean >/dev/null    # flags may have changed; make does not track them
	fi
	make -j"$(nproc)" >/dev/null
	make -j"$(nproc)" check TESTS= >/dev/null     # builds the Check binaries, runs none
)

exec /usr/bin/python3 - "$top" "$src" "$@" <<'PY'
import os
import subprocess
import sys
import time

top, src, only = sys.argv[1], sys.argv[2], sys.argv[3:]

# (name, file, exact text, replacement, test). The text must occur exactly
# once in the file; the test is a pytest node id (tests/integration by
# Debian's python3, others by the venv) or a Check binary (tests/unit/...).
# Every run's limits, in a pool's sandbox or one booted for it.
CG = "boxer_cgroup_set_limits (run.cgroup, &req->limits, err)"
MUTATIONS = [
    ("pids_limit: the program itself not counted", "executor/init.c",
     "rl = (struct rlimit) { s->nproc - 1, s->nproc - 1 };",
     "rl = (struct rlimit) { s->nproc, s->nproc };",
     "tests/integration/test_hostile.py::test_python_fork_bomb"),
    # A sandbox booted for the run has the request's RLIMIT_NOFILE from
    # its spec too; a pool's, booted at max_limits, has only boxer-init's.
    ("nofile: RLIMIT_NOFILE not the request's", "executor/executor.c",
     ".nofile = (uint64_t) req->limits.nofile,", ".nofile = 0,",
     "warm:tests/integration/test_hostile.py::test_exhaust_file_descriptors"),
    ("memory_mb: the cgroup gets no real memory limit", "executor/executor.c", CG,
     "boxer_cgroup_set_limits (run.cgroup, &(struct boxer_limits) { req->limits.cpu_cores, "
     "1 << 20, req->limits.wall_clock_secs, req->limits.pids_limit, req->limits.nofile }, err)",
     "tests/integration/test_run.py::test_oom"),
    ("cpu_cores: the cgroup gets 4 cores whatever was asked", "executor/executor.c", CG,
     "boxer_cgroup_set_limits (run.cgroup, &(struct boxer_limits) { 4, req->limits.memory_mb, "
     "req->limits.wall_clock_secs, req->limits.pids_limit, req->limits.nofile }, err)",
     "tests/integration/test_cpu.py::test_cpu_cores_limit_work_done"),
    ("wall_clock_secs: the kill comes 4x late", "executor/executor.c",
     ".wall_ms = (uint64_t) req->limits.wall_clock_secs * 1000,",
     ".wall_ms = (uint64_t) req->limits.wall_clock_secs * 4000,",
     "tests/integration/test_hostile.py::test_busy_loop_past_wall_clock"),
    # boxer-init and the executor both cap the output: no one change lets
    # more through, but boxer-init's cut must reach the result.
    ("output_limit_bytes: boxer-init's cut not reported", "executor/executor.c",
     "            if (flags & BOXER_INIT_STDOUT_TRUNCATED)\n              obuf.truncated = true;\n",
     "",
     "tests/integration/test_hostile.py::test_stdout_and_stderr_flood"),
    ("invalid UTF-8: output not sanitised", "fcgi/response.c",
     'cleanup_free char *clean = boxer_utf8_sanitize (data ? data : "", data ? len : 0, &clean_len);',
     'cleanup_free char *clean = xmalloc (len + 1); '
     'memcpy (clean, data ? data : "", clean_len = data ? len : 0);',
     "tests/integration/test_hostile.py::test_invalid_utf8"),
    ("/output: the host tmpfs 1000x larger", "executor/outputs.c",
     "(long long) limit_bytes * 2\n", "(long long) limit_bytes * 2000\n",
     "tests/integration/test_files.py::test_output_limits"),
    ("/output: what the program closed to others is lost", "executor/outputs.c",
     "  if (dir_is_empty (dir_fd))\n", "  if (dir_is_empty (dir_fd) || 1)\n",
     "tests/integration/test_files.py::test_outputs_the_program_closed_to_others"),
    ("runs_budget_bytes: the ledger admits past the budget", "executor/expiry.c",
     "if (whole && l.bytes + incoming <= budget)",
     "if (whole && l.bytes + incoming <= budget * 1000)",
     "tests/integration/test_quotas.py::test_runs_budget"),
    ("runs_budget_bytes: a record counts what it was charged, not what it took",
     "executor/records.c",
     "  boxer_expiry_settle (dir, charge, actual);", "  (void) actual;",
     "tests/integration/test_quotas.py::test_a_record_counts_what_it_took"),
    ("budgets: a charge a new measure dropped is taken out again", "executor/expiry.c",
     "  if (l.measure == charge->measure)\n", "  if (1)\n", "tests/unit/check_files"),
    ("budgets: a ledger never learns what expired", "executor/expiry.c",
     "  ledger_write (fd, &(struct ledger) { now, used + (after.bytes - before.bytes), before.measure });",
     "  (void) used;",
     "tests/unit/check_files"),
    ("uid: runs as root", "executor/executor.c",
     ".uid = BOXER_RUN_UID,", ".uid = 0,",
     "tests/integration/test_run.py::test_runs_unprivileged_with_own_hostname"),
    ("host files: the sandbox's root is the host's /", "executor/spec.c",
     'json_object_object_add (root, "path", json_object_new_string (in->rootfs));',
     'json_object_object_add (root, "path", json_object_new_string ("/"));',
     "tests/integration/test_hostile.py::test_host_invisible"),
    ("environment: the server's own environment under the request's", "executor/executor.c",
     "env = boxer_spec_merge_env (image->env, req->env);",
     "env = boxer_spec_merge_env (environ, req->env);",
     "tests/integration/test_hostile.py::test_environment_is_clean"),
    ("path traversal: '.' and '..' components allowed", "common/paths.c",
     "if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))", "if (0)",
     "tests/integration/test_files.py::test_output_escape_attempts_rejected"),
    ("sandbox network: deny ranges not dropped", "executor/firewall.c",
     '"\\t\\tip daddr @deny drop\\n"', '""',
     "tests/integration/test_network.py::test_sandbox_denied_ranges"),
    ("sandbox network: runs reach each other", "executor/firewall.c",
     '"\\t\\toifgroup %" PRIu32 " drop\\n"', '"\\t\\toifgroup %" PRIu32 " accept\\n"',
     "tests/integration/test_network.py::test_two_sandbox_runs_cannot_reach_each_other"),
    ("sandbox network: runs reach the host", "executor/firewall.c",
     '"\\t\\tiifgroup %" PRIu32 " jump input_from_run\\n"',
     '"\\t\\tiifgroup %" PRIu32 " accept\\n"',
     "tests/integration/test_network.py::test_sandbox_cannot_reach_host_services"),
    ("sandbox network: spoofed sources forwarded", "executor/firewall.c",
     '"\\t\\tiifname . ip saddr != @runs drop\\n"', '""',
     "tests/integration/test_network_more.py::test_spoofed_source_dropped"),
    ("max_limits: integer limits above the maximum accepted", "fcgi/request.c",
     "if (i < *(const int64_t *) lo || i > *(const int64_t *) hi)",
     "if (i < *(const int64_t *) lo)",
     "tests/integration/test_errors.py::test_limit_message_names_bounds"),
    ("unknown methods: 404 instead of 405", "fcgi/router.c",
     "  if (path_known)\n", "  if (0)\n",
     "tests/integration/test_hostile_inputs.py::test_unknown_methods_and_paths"),
    ("image bounds: implied parent directories not counted", "cache/layer.c",
     "if (count_entry (ap, entry, implied, inode, err) < 0)",
     "if (count_entry (ap, entry, 0, inode, err) < 0)",
     "tests/integration/test_registry.py::test_directory_bombs_are_refused"),
    ("API keys: a request without a key is served", "fcgi/router.c",
     "if (!routes[i].public && srv->cfg->n_api_keys > 0", "if (0",
     "tests/integration/test_keys.py::test_no_key_or_an_unknown_one_is_401"),
    ("API keys: another key's runs and outputs are shown", "fcgi/auth.c",
     "return http->key && owner && strcmp (owner, http->key->name) == 0;", "return true;",
     "tests/integration/test_keys.py::test_runs_and_outputs_belong_to_their_key"),
    ("API keys: another key's uploads are mounted", "fcgi/files.c",
     "      if (!boxer_auth_may_see (srv, http, owner))\n", "      if (0)\n",
     "tests/integration/test_keys.py::test_uploads_belong_to_their_key"),
    ("API keys: limits above the key's maximum are run", "fcgi/request.c",
     "      || (key && check_key (key, out, err) < 0))", "      || 0)",
     "tests/integration/test_keys.py::test_limits_and_networks_of_a_key"),
    ("API keys: a key without allow_images pulls", "fcgi/run.c",
     "http->key == NULL || http->key->allow_images", "true",
     "tests/integration/test_keys.py::test_images_are_a_permission"),
    ("API keys: max_concurrent_runs not counted", "executor/daemon.c",
     "if (key && key->max_concurrent_runs > 0 && key_load (d, c->key) >= key->max_concurrent_runs)",
     "if (0)",
     "tests/integration/test_keys.py::test_a_key_over_its_concurrent_runs_is_429"),
    # As root (boxer-image without worker_user) this mask is the one line;
    # the workers, unprivileged, also get libarchive's own drop of the bits.
    ("image layers: setuid and setgid bits kept (unpacked as root)", "cache/layer.c",
     "archive_entry_perm (entry) & ~(mode_t) (S_ISUID | S_ISGID)", "archive_entry_perm (entry)",
     "tests/unit/check_layer"),
    ("registries: loopback and private addresses contacted", "cache/registry.c",
     "if (boxer_registry_address_is_public (addr))", "if (addr)",
     "tests/integration/test_registry.py::test_unconfigured_loopback_host_is_never_contacted"),
    ("failed pulls: the answer waits for their remains to be removed", "cache/store.c",
     "      store->leftovers = l;\n      return r;",
     "      store->leftovers = l;\n      boxer_store_tidy (store);\n      return r;",
     "tests/integration/test_registry.py::test_unpacking_within_bounds_still_ends_at_pull_timeout"),
    ("failed pulls: their remains are never removed", "cache/store.c",
     "      if (boxer_rm_rf (l->tmpdir, &err) == 0)\n", "      if (0)\n",
     "tests/unit/check_store"),
    ("unpacker: no PID namespace of its own", "cache/unpack.c",
     "if (unshare (CLONE_NEWPID) < 0)", "if (0)", "tests/unit/check_layer"),
    ("killed executor: its run's /output tmpfs is not swept", "executor/executor.c",
     "boxer_runfiles_sweep (bundle);", "(void) bundle;",
     "tests/integration/test_files.py::test_executor_killed_mid_run_leaves_no_mount"),
    ("executor socket: a stranger's connection served", "executor/daemon.c",
     "if (cred.uid == 0 || (d->allowed_uid != (uid_t) -1 && cred.uid == d->allowed_uid))",
     "if (1)",
     "tests/integration/test_executor.py::test_peer_credentials_checked"),
    ("admission: the queue has no bound", "executor/daemon.c",
     "if ((int64_t) count_state (d, CONN_QUEUED) >= d->max_queued)", "if (0)",
     "tests/integration/test_executor.py::test_overload_answers_busy_fast"),
    ("client gone: its run goes on", "executor/init_link.c",
     "if (n == 3 && p[2].revents)", "if (0)",
     "tests/integration/test_executor.py::test_client_gone_cancels_run"),
    ("workers: stay root", "common/layout.c",
     "if (cfg->worker_user == NULL || geteuid () != 0)", "if (1)",
     "tests/integration/test_executor.py::test_process_table"),
    ("executor: a worker's limits above max_limits accepted", "executor/protocol.c",
     'get_int (obj, "memory_mb", lo->memory_mb, hi->memory_mb, &out->memory_mb, err)',
     'get_int (obj, "memory_mb", lo->memory_mb, INT64_MAX, &out->memory_mb, err)',
     "tests/unit/check_protocol"),
    ("warm sandbox: the run's limits not written into its cgroup", "executor/executor.c",
     "if (run.cgroup && boxer_cgroup_set_limits (run.cgroup, &req->limits, err) < 0)", "if (0)",
     "tests/integration/test_warm.py::test_limits_files_and_outputs_in_a_warm_sandbox"),
    ("warm sandbox: programs run as root", "executor/executor.c",
     ".uid = BOXER_RUN_UID,", ".uid = 0,",
     "tests/integration/test_warm.py::test_pool_fills_serves_and_never_reuses"),
    ("warm sandbox: the wall clock comes 4x late", "executor/executor.c",
     ".wall_ms = (uint64_t) req->limits.wall_clock_secs * 1000,",
     ".wall_ms = (uint64_t) req->limits.wall_clock_secs * 4000,",
     "tests/integration/test_warm.py::test_limits_files_and_outputs_in_a_warm_sandbox"),
    ("warm sandbox: uploads writable by the program", "executor/init_link.c",
     "boxer_init_put_u32 (&w, 0444);", "boxer_init_put_u32 (&w, 0666);",
     "tests/integration/test_warm.py::test_limits_files_and_outputs_in_a_warm_sandbox"),
    ("warm sandbox: one serves a second run", "executor/warm.c",
     "            *out = p->slots[k].sb;\n            slot_remove (p, k);\n",
     "            *out = p->slots[k].sb;\n",
     "tests/integration/test_warm.py::test_pool_fills_serves_and_never_reuses"),
    ("batch: every run the same uid", "executor/batch.c",
     ".uid = BOXER_BATCH_UID_BASE + (uint32_t) index,", ".uid = BOXER_BATCH_UID_BASE,",
     "tests/integration/test_batch.py::test_each_run_is_alone"),
    ("batch: runs share /tmp", "executor/batch.c",
     ".flags = BOXER_INIT_START_OWN_TMP | BOXER_INIT_START_KILL_UID,",
     ".flags = BOXER_INIT_START_KILL_UID,",
     "tests/integration/test_batch.py::test_each_run_is_alone"),
    ("batch: what a run started in a session of its own outlives it", "executor/init.c",
     "if (runs[i].uid)\n            kill_uid", "if (0)\n            kill_uid",
     "tests/integration/test_batch.py::test_what_a_run_leaves_dies_with_it"),
    ("batch: a run's wall clock comes 4x late", "executor/batch.c",
     ".wall_ms = (uint64_t) run->limits.wall_clock_secs * 1000,",
     ".wall_ms = (uint64_t) run->limits.wall_clock_secs * 4000,",
     "tests/integration/test_batch.py::test_per_run_wall_clock"),
    ("batch: no address-space limit per run", "executor/batch.c",
     ".as_bytes = (uint64_t) run->limits.memory_mb * 1024 * 1024,", ".as_bytes = 0,",
     "tests/integration/test_batch.py::test_address_space_limit_per_run"),
    # A sandbox booted for the batch has its limits from the boot; a pool's,
    # booted at max_limits, only from this line.
    ("batch: the sandbox's limits not written into its cgroup", "executor/executor.c",
     "if (run.cgroup && boxer_cgroup_set_limits (run.cgroup, &batch->req.limits, err) < 0)",
     "if (0)",
     "warm:tests/integration/test_batch.py::test_oom_of_the_sandbox_is_every_unfinished_run"),
    ("batch: another upload silently kept at a taken path", "executor/batch.c",
     "if (strcmp (b->written[w].id, f->id) != 0)", "if (0)",
     "tests/integration/test_batch.py::test_files"),
    ("batch: output cut by timing, not a fixed share", "executor/batch.c",
     ".cap = boxer_batch_output_cap (cfg, batch->nruns),", ".cap = (size_t) cfg->output_limit_bytes,",
     "tests/integration/test_batch.py::test_output_share_is_fixed"),
    ("stream: a reader that takes nothing holds the run", "executor/protocol.c",
     "s->deadline_ms = boxer_now_ms () + s->wall_ms + STREAM_GRACE_MS;\n  return stream_send (s, boxer_proto_encode_started ());",
     "s->deadline_ms = -1;\n  return stream_send (s, boxer_proto_encode_started ());",
     "tests/integration/test_stream.py::test_reader_that_stops_reading"),
    ("stream: events wait in the worker's buffer", "fcgi/sse.c",
     " || FCGX_FFlush (sse->req->out) < 0)", ")",
     "tests/integration/test_stream.py::test_output_arrives_as_written"),
    ("stream: boxer-init's cut not flagged", "executor/init.c",
     "          r->flags |= trunc_flag;\n", "",
     "tests/integration/test_stream.py::test_output_cap_holds"),
    ("stream: a character cut between writes is replaced", "fcgi/sse.c",
     "keep = boxer_utf8_incomplete_tail (joined, total);", "keep = 0;",
     "tests/integration/test_stream.py::test_characters_cut_between_writes"),
    ("warm sandbox: booted in the host's network namespace", "executor/executor.c",
     "      .netns_path = run.net.netns_path,\n      .host_network = run.net.mode == BOXER_NETWORK_HOST,\n    };\n    const struct boxer_spec_bind name_files",
     "      .host_network = run.net.mode == BOXER_NETWORK_HOST,\n    };\n    const struct boxer_spec_bind name_files",
     "tests/integration/test_network_warm.py::test_pool_sandbox_serves_a_sandbox_run"),
    ("session: network sandbox booted without one", "executor/session.c",
     "boxer_executor_warm_claim (k->ex, digest, k->req.req.network, NULL, &k->sb, err)",
     "boxer_executor_warm_claim (k->ex, digest, BOXER_NETWORK_NONE, NULL, &k->sb, err)",
     "tests/integration/test_network_warm.py::test_session_keeps_its_network"),
    ("session: another key's session is found", "executor/daemon.c",
     "\n        && d->sessions[k].key == d->conns[i].key)", ")",
     "tests/integration/test_keys.py::test_sessions_belong_to_their_key"),
    ("session: never ends when idle", "executor/session.c",
     "long long end = idle_end < ttl_end ? idle_end : ttl_end;", "long long end = ttl_end;",
     "tests/integration/test_sessions.py::test_idle_and_ttl_expiry"),
    ("session: files written as root", "executor/session.c",
     "boxer_init_link_queue_data (&k->link, id, BOXER_RUN_UID, BOXER_RUN_GID, 0644",
     "boxer_init_link_queue_data (&k->link, id, 0, 0, 0644",
     "tests/integration/test_sessions.py::test_files_in_and_out"),
    ("session: a read follows a link", "executor/init.c",
     "fd = parent < 0 ? -1 : openat (parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);",
     "fd = parent < 0 ? -1 : openat (parent, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);",
     "tests/integration/test_sessions.py::test_files_in_and_out"),
    ("boxer-init: a program keeps the bounding set", "executor/init.c",
     "prctl (PR_CAPBSET_DROP, cap, 0, 0, 0);", "(void) cap;",
     "tests/unit/check_init"),
    ("boxer-init: the bounding set misread as empty", "executor/init.c",
     "          held = v;", "          held = v & 0;",
     "tests/unit/check_init"),
    ("warm pool: a refill boots beside the run that took the sandbox", "executor/warm.c",
     "  return runs_busy && p->short_since_ms && now < p->short_since_ms + REFILL_YIELD_MS;",
     "  return false;",
     "tests/integration/test_warm.py::test_refill_yields_to_the_run_for_a_while"),
    ("warm pool: a refill waits for the used sandbox's removal too", "executor/daemon.c",
     "(int) (free_slots > 0 ? free_slots : 0), live_runs (d) > 0);",
     "(int) (free_slots > 0 ? free_slots : 0), d->nrunning > 0);",
     "tests/integration/test_warm.py::test_refill_starts_once_the_program_is_over"),
    ("warm pool: a refill waits as long as runs go on", "executor/warm.c",
     "  return runs_busy && p->short_since_ms && now < p->short_since_ms + REFILL_YIELD_MS;",
     "  return runs_busy && p->short_since_ms;",
     "tests/integration/test_warm.py::test_refill_yields_to_the_run_for_a_while"),
]


def run_test(test, log):
    env = dict(os.environ)
    if test.startswith("warm:"):
        # The test with every run in a pool's sandbox, as contrib/test.sh's
        # warm pass has it, alone.
        test = test[len("warm:"):]
        env["BOXER_TEST_WARM"] = "1"
        env["BOXER_TEST_WARM_MIN_RUNS"] = "1"
    if test.startswith("tests/unit/"):
        argv = [os.path.join(src, test)]
        env["CK_FORK"] = "yes"
    else:
        py = "/usr/bin/python3" if test.startswith("tests/integration/") else env["BOXER_VENV_PYTHON"]
        # Its own temporary directory, which pytest empties at each start
        # and the end removes: none left in /tmp.
        argv = [py, "-m", "pytest", "-x", "-q", "-rs", "-p", "no:cacheprovider",
                f"--basetemp={src}/pytest-tmp", test]
    with open(log, "w") as f:
        try:
            p = subprocess.run(argv, cwd=top, env=env, stdout=f, stderr=subprocess.STDOUT,
                               timeout=1200)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    text = open(log).read()
    if rc == 0 and "SKIPPED" in text:
        return "skipped"
    return rc


def build():
    # "check TESTS=": the programs and the Check binaries (a mutation may be
    # caught by a unit test), running none.
    return subprocess.run(["make", "-j%d" % os.cpu_count(), "check", "TESTS="], cwd=src,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


logs = os.path.join(src, "mutation-logs")
os.makedirs(logs, exist_ok=True)
selected = [m for m in MUTATIONS if not only or m[0] in only or m[0].split(":")[0] in only]

# The tests against the unmutated build: each must pass.
# A second try, as the real stack on a shared machine now and then fails
# a run for reasons of its own; twice is a broken test.
for test in sorted({m[4] for m in selected}):
    rc = run_test(test, os.path.join(logs, "baseline.log"))
    if rc != 0:
        rc = run_test(test, os.path.join(logs, "baseline.log"))
    if rc != 0:
        print(f"baseline: {test} does not pass unmutated ({rc}); see {logs}/baseline.log",
              file=sys.stderr)
        sys.exit(2)

caught = 0
for i, (name, path, old, new, test) in enumerate(selected):
    full = os.path.join(src, path)
    original = open(full).read()
    t0 = time.monotonic()
    log = os.path.join(logs, f"{i:02d}.log")
    if original.count(old) != 1:
        verdict = f"missed (could not apply: the text occurs {original.count(old)} times)"
    else:
        try:
            open(full, "w").write(original.replace(old, new))
            b = build()
            if b.returncode != 0:
                open(log, "w").write(b.stderr)
                verdict = f"missed (does not build; {log})"
            else:
                rc = run_test(test, log)
                verdict = "caught" if rc not in (0, "skipped") else f"MISSED ({rc}; {log})"
        finally:
            open(full, "w").write(original)
    if verdict == "caught":
        caught += 1
    print(f"{verdict:8} {name}  [{test}] ({time.monotonic() - t0:.0f} s)", flush=True)

b = build()     # the scratch tree back to the unmutated source
subprocess.run(["rm", "-rf", os.path.join(src, "pytest-tmp")])
print(f"{caught}/{len(selected)} mutations caught")
# A caught mutation may leave what its protection would have removed (a
# test keeps a stack's directory when it finds leftovers): say so, since
# the suite's own leftover check would fail on it later.
left = subprocess.run([os.path.join(top, "contrib/check-leftovers.sh")])
if left.returncode != 0:
    print("mutation-check: remove what is listed above before running contrib/test.sh",
          file=sys.stderr)
sys.exit(0 if caught == len(selected) and b.returncode == 0 and left.returncode == 0 else 1)
PY
