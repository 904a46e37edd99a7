/* Unit tests for common/config.c: the config table, parsing and the load
   order.  Every test runs with $HOME set to a fresh temporary directory and
   $BOXER_CONFIG unset.  */
#include <config.h>

#include <check.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/config.h"
#include "common/fsutil.h"

static struct boxer_config cfg;
static char tmpdir[] = "/tmp/check_config.XXXXXX";
static char *saved_home;
static char *saved_boxer_config;

static char *
dup_env (const char *name)
{
  const char *v = getenv (name);
  return v ? xstrdup (v) : NULL;
}

static void
restore_env (const char *name, const char *value)
{
  if (value)
    setenv (name, value, 1);
  else
    unsetenv (name);
}

static void
setup (void)
{
  saved_home = dup_env ("HOME");
  saved_boxer_config = dup_env ("BOXER_CONFIG");
  strcpy (tmpdir, "/tmp/check_config.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (tmpdir));
  setenv ("HOME", tmpdir, 1);
  unsetenv ("BOXER_CONFIG");
  boxer_config_init_defaults (&cfg);
}

static void
teardown (void)
{
  boxer_config_release (&cfg);
  ck_assert_int_eq (boxer_rm_rf (tmpdir, NULL), 0);
  restore_env ("HOME", saved_home);
  restore_env ("BOXER_CONFIG", saved_boxer_config);
  free (saved_home);
  free (saved_boxer_config);
}

static int
parse (const char *json, struct boxer_error **err)
{
  return boxer_config_parse (&cfg, json, strlen (json), err);
}

static void
expect_ok (const char *json)
{
  cleanup_error struct boxer_error *err = NULL;

  ck_assert_msg (parse (json, &err) == 0, "refused %s: %s", json, err ? err->msg : "?");
  ck_assert_ptr_null (err);
}

static void
expect_invalid_len (const char *json, size_t len, const char *want)
{
  cleanup_error struct boxer_error *err = NULL;

  ck_assert_msg (boxer_config_parse (&cfg, json, len, &err) < 0, "accepted %s", json);
  ck_assert_ptr_nonnull (err);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, want) != NULL, "message '%s' lacks '%s'", err->msg, want);
}

static void
expect_invalid (const char *json, const char *want)
{
  expect_invalid_len (json, strlen (json), want);
}

static void
write_config (const char *path, const char *json)
{
  cleanup_free char *dir = xstrdup (path);

  *strrchr (dir, '/') = '\0';
  ck_assert_int_eq (boxer_mkdir_p (dir, 0700, NULL), 0);
  ck_assert_int_eq (boxer_write_file_atomic (path, json, strlen (json), 0600, NULL), 0);
}

START_TEST (test_defaults)
{
  cleanup_free char *home = xasprintf ("%s/.boxer", tmpdir);

  ck_assert_str_eq (cfg.home, home);
  ck_assert_ptr_null (cfg.runsc_path);
  ck_assert_str_eq (cfg.platform, "systrap");
  ck_assert_str_eq (cfg.listen_addr, ":8080");
  ck_assert (!cfg.ignore_cgroups);
  ck_assert_int_eq (cfg.output_limit_bytes, 10485760);
  ck_assert_int_eq (cfg.upload_limit_bytes, 10485760);

  ck_assert_double_eq (cfg.defaults.cpu_cores, 1.0);
  ck_assert_int_eq (cfg.defaults.memory_mb, 256);
  ck_assert_int_eq (cfg.defaults.wall_clock_secs, 30);
  ck_assert_int_eq (cfg.defaults.pids_limit, 64);
  ck_assert_int_eq (cfg.defaults.nofile, 256);

  ck_assert_double_eq (cfg.max_limits.cpu_cores, 4.0);
  ck_assert_int_eq (cfg.max_limits.memory_mb, 8192);
  ck_assert_int_eq (cfg.max_limits.wall_clock_secs, 600);
  ck_assert_int_eq (cfg.max_limits.pids_limit, 4096);
  ck_assert_int_eq (cfg.max_limits.nofile, 65536);

  ck_assert_double_eq (boxer_limits_floor.cpu_cores, 0.05);
  ck_assert_int_eq (boxer_limits_floor.memory_mb, 16);
  ck_assert_int_eq (boxer_limits_floor.wall_clock_secs, 1);
  ck_assert_int_eq (boxer_limits_floor.pids_limit, 1);
  ck_assert_int_eq (boxer_limits_floor.nofile, 16);
}
END_TEST

START_TEST (test_defaults_home_not_absolute)
{
  /* A relative $HOME is not trusted: the passwd entry is used instead.  */
  boxer_config_release (&cfg);
  setenv ("HOME", "relative/dir", 1);
  boxer_config_init_defaults (&cfg);
  ck_assert_int_eq (cfg.home[0], '/');
  ck_assert_msg (strstr (cfg.home, "/.boxer") != NULL, "%s", cfg.home);
  ck_assert_ptr_null (strstr (cfg.home, "relative"));
}
END_TEST

START_TEST (test_empty_object)
{
  expect_ok ("{}");
  ck_assert_str_eq (cfg.platform, "systrap");
  ck_assert_int_eq (cfg.defaults.memory_mb, 256);
}
END_TEST

START_TEST (test_every_field)
{
  expect_ok ("{\n"
             "  \"home\": \"/srv/boxer\",\n"
             "  \"runsc_path\": \"/usr/local/bin/runsc\",\n"
             "  \"platform\": \"ptrace\",\n"
             "  \"listen_addr\": \"127.0.0.1:9000\",\n"
             "  \"ignore_cgroups\": true,\n"
             "  \"output_limit_bytes\": 2048,\n"
             "  \"upload_limit_bytes\": 17179869184,\n"
             "  \"defaults\": {\"cpu_cores\": 0.5, \"memory_mb\": 128, \"wall_clock_secs\": 5,\n"
             "               \"pids_limit\": 8, \"nofile\": 32},\n"
             "  \"max_limits\": {\"cpu_cores\": 256, \"memory_mb\": 1048576,\n"
             "                 \"wall_clock_secs\": 86400, \"pids_limit\": 65536,\n"
             "                 \"nofile\": 1048576}\n"
             "}\n");
  ck_assert_str_eq (cfg.home, "/srv/boxer");
  ck_assert_str_eq (cfg.runsc_path, "/usr/local/bin/runsc");
  ck_assert_str_eq (cfg.platform, "ptrace");
  ck_assert_str_eq (cfg.listen_addr, "127.0.0.1:9000");
  ck_assert (cfg.ignore_cgroups);
  ck_assert_int_eq (cfg.output_limit_bytes, 2048);
  ck_assert_int_eq (cfg.upload_limit_bytes, 17179869184LL);
  ck_assert_double_eq (cfg.defaults.cpu_cores, 0.5);
  ck_assert_int_eq (cfg.defaults.memory_mb, 128);
  ck_assert_int_eq (cfg.defaults.wall_clock_secs, 5);
  ck_assert_int_eq (cfg.defaults.pids_limit, 8);
  ck_assert_int_eq (cfg.defaults.nofile, 32);
  ck_assert_double_eq (cfg.max_limits.cpu_cores, 256);
  ck_assert_int_eq (cfg.max_limits.memory_mb, 1048576);
  ck_assert_int_eq (cfg.max_limits.wall_clock_secs, 86400);
  ck_assert_int_eq (cfg.max_limits.pids_limit, 65536);
  ck_assert_int_eq (cfg.max_limits.nofile, 1048576);
}
END_TEST

START_TEST (test_partial_limits_keep_the_rest)
{
  expect_ok ("{\"defaults\": {\"memory_mb\": 512}, \"max_limits\": {\"cpu_cores\": 8}}");
  ck_assert_int_eq (cfg.defaults.memory_mb, 512);
  ck_assert_double_eq (cfg.defaults.cpu_cores, 1.0);
  ck_assert_int_eq (cfg.defaults.nofile, 256);
  ck_assert_double_eq (cfg.max_limits.cpu_cores, 8);
  ck_assert_int_eq (cfg.max_limits.memory_mb, 8192);
}
END_TEST

START_TEST (test_ignore_cgroups_false)
{
  cfg.ignore_cgroups = true;
  expect_ok ("{\"ignore_cgroups\": false}");
  ck_assert (!cfg.ignore_cgroups);
}
END_TEST

START_TEST (test_unknown_field)
{
  expect_invalid ("{\"listen\": \":80\"}", "config: unknown field 'listen'");
  expect_invalid ("{\"platform\": \"systrap\", \"max_limit\": {}}",
                  "config: unknown field 'max_limit'");
}
END_TEST

START_TEST (test_unknown_nested_field)
{
  expect_invalid ("{\"defaults\": {\"foo\": 1}}", "config: unknown field 'defaults.foo'");
  expect_invalid ("{\"max_limits\": {\"memory_mb\": 512, \"disk_mb\": 1}}",
                  "config: unknown field 'max_limits.disk_mb'");
}
END_TEST

START_TEST (test_wrong_types)
{
  expect_invalid ("{\"home\": 1}", "config: 'home' must be a non-empty string");
  expect_invalid ("{\"home\": \"\"}", "config: 'home' must be a non-empty string");
  expect_invalid ("{\"runsc_path\": null}", "config: 'runsc_path' must be a non-empty string");
  expect_invalid ("{\"platform\": [\"systrap\"]}", "config: 'platform' must be a non-empty string");
  expect_invalid ("{\"listen_addr\": 8080}", "config: 'listen_addr' must be a non-empty string");
  expect_invalid ("{\"ignore_cgroups\": \"yes\"}",
                  "config: 'ignore_cgroups' must be true or false");
  expect_invalid ("{\"ignore_cgroups\": 1}", "config: 'ignore_cgroups' must be true or false");
  expect_invalid ("{\"output_limit_bytes\": \"1MB\"}",
                  "config: 'output_limit_bytes' must be an integer");
  expect_invalid ("{\"upload_limit_bytes\": 2048.5}",
                  "config: 'upload_limit_bytes' must be an integer");
  expect_invalid ("{\"defaults\": []}", "config: defaults must be an object");
  expect_invalid ("{\"max_limits\": 4}", "config: max_limits must be an object");
  expect_invalid ("{\"defaults\": {\"cpu_cores\": \"2\"}}",
                  "config: 'defaults.cpu_cores' must be a number");
  expect_invalid ("{\"defaults\": {\"memory_mb\": 256.5}}",
                  "config: 'defaults.memory_mb' must be an integer");
  expect_invalid ("{\"max_limits\": {\"nofile\": true}}",
                  "config: 'max_limits.nofile' must be an integer");
  expect_invalid ("[]", "config: the document must be an object");
  expect_invalid ("\"x\"", "config: the document must be an object");
  expect_invalid ("5", "config: the document must be an object");
}
END_TEST

START_TEST (test_nul_in_string)
{
  expect_invalid ("{\"home\": \"/srv\\u0000/x\"}", "config: 'home' must not contain NUL bytes");
  expect_invalid ("{\"platform\": \"systrap\\u0000\"}",
                  "config: 'platform' must not contain NUL bytes");
}
END_TEST

START_TEST (test_out_of_range)
{
  expect_invalid ("{\"output_limit_bytes\": 1023}",
                  "config: 'output_limit_bytes' must be between 1024 and 536870912");
  expect_invalid ("{\"output_limit_bytes\": 1073741825}",
                  "config: 'output_limit_bytes' must be between 1024 and 536870912");
  expect_invalid ("{\"upload_limit_bytes\": 17179869185}",
                  "config: 'upload_limit_bytes' must be between 1024 and 17179869184");
  expect_invalid ("{\"upload_limit_bytes\": -1}",
                  "config: 'upload_limit_bytes' must be between 1024 and 17179869184");
  expect_invalid ("{\"upload_limit_bytes\": 18446744073709551615}",
                  "config: 'upload_limit_bytes' must be between 1024 and 17179869184");
  expect_invalid ("{\"defaults\": {\"memory_mb\": 15}}",
                  "config: 'defaults.memory_mb' must be between 16 and 1048576");
  expect_invalid ("{\"max_limits\": {\"cpu_cores\": 300}}",
                  "config: 'max_limits.cpu_cores' must be between 0.05 and 256");
  expect_invalid ("{\"defaults\": {\"cpu_cores\": 0.01}}",
                  "config: 'defaults.cpu_cores' must be between 0.05 and 256");
  expect_invalid ("{\"defaults\": {\"cpu_cores\": NaN}}",
                  "config: 'defaults.cpu_cores' must be between 0.05 and 256");
  expect_invalid ("{\"max_limits\": {\"wall_clock_secs\": 86401}}",
                  "config: 'max_limits.wall_clock_secs' must be between 1 and 86400");
  expect_invalid ("{\"max_limits\": {\"pids_limit\": 0}}",
                  "config: 'max_limits.pids_limit' must be between 1 and 65536");
  expect_invalid ("{\"max_limits\": {\"nofile\": 15}}",
                  "config: 'max_limits.nofile' must be between 16 and 1048576");
  /* The bounds themselves are fine.  */
  expect_ok ("{\"output_limit_bytes\": 1024, \"defaults\": {\"cpu_cores\": 0.05, "
             "\"memory_mb\": 16, \"wall_clock_secs\": 1, \"pids_limit\": 1, \"nofile\": 16}}");
}
END_TEST

START_TEST (test_defaults_above_max)
{
  expect_invalid ("{\"defaults\": {\"memory_mb\": 9000}}",
                  "config: 'defaults.memory_mb' is above 'max_limits.memory_mb'; raise the "
                  "maximum or lower the default");
  expect_invalid ("{\"max_limits\": {\"cpu_cores\": 0.5}}",
                  "config: 'defaults.cpu_cores' is above 'max_limits.cpu_cores'");
  /* A refused document may have been applied in part: start afresh.  */
  boxer_config_release (&cfg);
  boxer_config_init_defaults (&cfg);
  expect_invalid ("{\"defaults\": {\"nofile\": 100}, \"max_limits\": {\"nofile\": 99}}",
                  "config: 'defaults.nofile' is above 'max_limits.nofile'");
}
END_TEST

START_TEST (test_defaults_raised_with_max)
{
  /* Order within the document does not matter: the check runs at the end.  */
  expect_ok ("{\"defaults\": {\"memory_mb\": 9000}, \"max_limits\": {\"memory_mb\": 10000}}");
  ck_assert_int_eq (cfg.defaults.memory_mb, 9000);
  ck_assert_int_eq (cfg.max_limits.memory_mb, 10000);
  expect_ok ("{\"defaults\": {\"nofile\": 100}, \"max_limits\": {\"nofile\": 100}}");
}
END_TEST

START_TEST (test_home_tilde)
{
  cleanup_free char *want = xasprintf ("%s/x/y", tmpdir);

  expect_ok ("{\"home\": \"~/x/y\"}");
  ck_assert_str_eq (cfg.home, want);
  expect_ok ("{\"home\": \"~\"}");
  ck_assert_str_eq (cfg.home, tmpdir);
}
END_TEST

START_TEST (test_home_relative)
{
  expect_invalid ("{\"home\": \"rel/x\"}",
                  "config: 'home' must be an absolute path, got 'rel/x'");
  expect_invalid ("{\"home\": \"./x\"}", "config: 'home' must be an absolute path");
  /* ~user is not expanded.  */
  expect_invalid ("{\"home\": \"~root/x\"}", "config: 'home' must be an absolute path");
}
END_TEST

START_TEST (test_malformed)
{
  static const char nul_garbage[] = "{}\0x";

  expect_invalid ("{} x", "config: not valid JSON (");
  expect_invalid ("{}}", "config: not valid JSON (");
  expect_invalid ("{\"home\": }", "config: not valid JSON (");
  expect_invalid_len (nul_garbage, sizeof nul_garbage - 1, "config: not valid JSON (");
  expect_invalid_len (nul_garbage, 3, "config: not valid JSON (");
  expect_invalid ("", "config: not valid JSON (unexpected end of data)");
  expect_invalid ("  \n", "config: not valid JSON (unexpected end of data)");
  expect_invalid ("{\"home\": \"/x\"", "config: not valid JSON (unexpected end of data)");
  expect_invalid ("{\"defaults\": {\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": {\"g\": 1}}}}}}}}",
                  "config: not valid JSON (nesting too deep)");
  /* Trailing white space is fine.  */
  expect_ok ("{}\n\t\r ");
}
END_TEST

/* The load order: explicit path > $BOXER_CONFIG > ~/.boxer/config.json >
   the built-in defaults.  */

START_TEST (test_load_order)
{
  cleanup_free char *home_path = xasprintf ("%s/.boxer/config.json", tmpdir);
  cleanup_free char *env_path = xasprintf ("%s/env.json", tmpdir);
  cleanup_free char *explicit_path = xasprintf ("%s/explicit.json", tmpdir);
  struct boxer_config c;

  /* Nothing: the defaults.  */
  {
    cleanup_free char *source = NULL;
    ck_assert_int_eq (boxer_config_load (&c, NULL, &source, NULL), 0);
    ck_assert_str_eq (source, "defaults");
    ck_assert_str_eq (c.platform, "systrap");
    boxer_config_release (&c);
  }

  /* ~/.boxer/config.json.  */
  write_config (home_path, "{\"platform\": \"home\"}");
  {
    cleanup_free char *source = NULL;
    ck_assert_int_eq (boxer_config_load (&c, NULL, &source, NULL), 0);
    ck_assert_str_eq (source, home_path);
    ck_assert_str_eq (c.platform, "home");
    boxer_config_release (&c);
  }

  /* $BOXER_CONFIG beats it; an empty one does not count.  */
  write_config (env_path, "{\"platform\": \"env\"}");
  setenv ("BOXER_CONFIG", "", 1);
  {
    cleanup_free char *source = NULL;
    ck_assert_int_eq (boxer_config_load (&c, NULL, &source, NULL), 0);
    ck_assert_str_eq (c.platform, "home");
    boxer_config_release (&c);
  }
  setenv ("BOXER_CONFIG", env_path, 1);
  {
    cleanup_free char *source = NULL;
    ck_assert_int_eq (boxer_config_load (&c, NULL, &source, NULL), 0);
    ck_assert_str_eq (source, env_path);
    ck_assert_str_eq (c.platform, "env");
    boxer_config_release (&c);
  }

  /* An explicit path beats everything.  */
  write_config (explicit_path, "{\"platform\": \"explicit\"}");
  {
    cleanup_free char *source = NULL;
    ck_assert_int_eq (boxer_config_load (&c, explicit_path, &source, NULL), 0);
    ck_assert_str_eq (source, explicit_path);
    ck_assert_str_eq (c.platform, "explicit");
    boxer_config_release (&c);
  }

  /* source_out is optional.  */
  ck_assert_int_eq (boxer_config_load (&c, NULL, NULL, NULL), 0);
  ck_assert_str_eq (c.platform, "env");
  boxer_config_release (&c);
}
END_TEST

START_TEST (test_load_home_follows_home_env)
{
  cleanup_free char *other = xasprintf ("%s/other", tmpdir);
  cleanup_free char *path = xasprintf ("%s/.boxer/config.json", other);
  cleanup_free char *source = NULL;
  struct boxer_config c;

  write_config (path, "{\"listen_addr\": \":9999\"}");
  setenv ("HOME", other, 1);
  ck_assert_int_eq (boxer_config_load (&c, NULL, &source, NULL), 0);
  ck_assert_str_eq (source, path);
  ck_assert_str_eq (c.listen_addr, ":9999");
  boxer_config_release (&c);
}
END_TEST

START_TEST (test_load_missing_explicit)
{
  cleanup_free char *path = xasprintf ("%s/nope.json", tmpdir);
  cleanup_free char *home_path = xasprintf ("%s/.boxer/config.json", tmpdir);
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_config c;

  /* A named file that is missing is an error, never a silent fallback.  */
  write_config (home_path, "{}");
  ck_assert_int_lt (boxer_config_load (&c, path, NULL, &err), 0);
  ck_assert_ptr_nonnull (err);
  ck_assert_msg (strstr (err->msg, "read config '") != NULL, "%s", err->msg);
  ck_assert_msg (strstr (err->msg, "nope.json") != NULL, "%s", err->msg);
  boxer_config_release (&c);
  boxer_error_release (&err);

  setenv ("BOXER_CONFIG", path, 1);
  ck_assert_int_lt (boxer_config_load (&c, NULL, NULL, &err), 0);
  ck_assert_msg (strstr (err->msg, "nope.json") != NULL, "%s", err->msg);
  boxer_config_release (&c);
}
END_TEST

START_TEST (test_load_invalid_file)
{
  cleanup_free char *path = xasprintf ("%s/bad.json", tmpdir);
  cleanup_error struct boxer_error *err = NULL;
  struct boxer_config c;

  write_config (path, "{\"defaults\": {\"foo\": 1}}");
  ck_assert_int_lt (boxer_config_load (&c, path, NULL, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_msg (strstr (err->msg, path) != NULL, "%s", err->msg);
  ck_assert_msg (strstr (err->msg, "config: unknown field 'defaults.foo'") != NULL, "%s",
                 err->msg);
  boxer_config_release (&c);
}
END_TEST

START_TEST (test_load_expands_home)
{
  cleanup_free char *path = xasprintf ("%s/c.json", tmpdir);
  cleanup_free char *want = xasprintf ("%s/data", tmpdir);
  struct boxer_config c;

  write_config (path, "{\"home\": \"~/data\"}");
  ck_assert_int_eq (boxer_config_load (&c, path, NULL, NULL), 0);
  ck_assert_str_eq (c.home, want);
  boxer_config_release (&c);
}
END_TEST

/* Registry pulls: registries, image_platform, pull_policy, budget.  */

START_TEST (test_registry_defaults)
{
  ck_assert_uint_eq (cfg.n_registries, 0);
  ck_assert_ptr_null (boxer_config_registry (&cfg, "localhost:5000"));
  ck_assert_str_eq (cfg.image_platform, "linux/amd64");
  ck_assert_int_eq (cfg.pull_policy, BOXER_PULL_IF_NOT_PRESENT);
  /* Sized from the disk when the cache opens.  */
  ck_assert_int_eq (cfg.images_budget_bytes, -1);
  ck_assert_int_eq (cfg.registry_timeout_secs, 30);
  ck_assert_int_eq (cfg.pull_timeout_secs, 900);
  ck_assert_ptr_null (cfg.allowed_registries);
  ck_assert_int_eq (cfg.image_max_bytes, 16LL << 30);
  ck_assert_int_eq (cfg.image_max_entries, 1000000);
  ck_assert_int_eq (cfg.image_max_depth, 128);
  ck_assert_int_eq (cfg.image_max_path_bytes, 1024);
  ck_assert_int_eq (cfg.files_budget_bytes, 2LL << 30);
  ck_assert_int_eq (cfg.runs_budget_bytes, 2LL << 30);
  ck_assert_int_eq (cfg.min_free_bytes, 256LL << 20);
}
END_TEST

START_TEST (test_untrusted_image_settings)
{
  expect_ok ("{\"pull_timeout_secs\": 60, \"allowed_registries\": [\"ghcr.io\"],"
             " \"image_max_bytes\": 1073741824, \"image_max_entries\": 5000,"
             " \"image_max_depth\": 32, \"image_max_path_bytes\": 512,"
             " \"files_budget_bytes\": 0, \"runs_budget_bytes\": 1048576,"
             " \"min_free_bytes\": 0, \"images_budget_bytes\": 0}");
  ck_assert_int_eq (cfg.pull_timeout_secs, 60);
  ck_assert_str_eq (cfg.allowed_registries[0], "ghcr.io");
  ck_assert_ptr_null (cfg.allowed_registries[1]);
  ck_assert_int_eq (cfg.image_max_entries, 5000);
  ck_assert_int_eq (cfg.image_max_depth, 32);
  ck_assert_int_eq (cfg.image_max_path_bytes, 512);
  ck_assert_int_eq (cfg.files_budget_bytes, 0);
  ck_assert_int_eq (cfg.runs_budget_bytes, 1048576);
  ck_assert_int_eq (cfg.images_budget_bytes, 0);
  expect_invalid ("{\"image_max_path_bytes\": 2048}",
                  "config: 'image_max_path_bytes' must be between 64 and 2047");
  expect_invalid ("{\"image_max_depth\": 0}", "config: 'image_max_depth' must be between 4");
  expect_invalid ("{\"pull_timeout_secs\": 0}", "config: 'pull_timeout_secs' must be between 1");
  expect_invalid ("{\"allowed_registries\": [\"\"]}",
                  "config: 'allowed_registries[0]' must be a non-empty string");
  expect_invalid ("{\"min_free_bytes\": -1}", "config: 'min_free_bytes' must be between 0");
}
END_TEST

START_TEST (test_registries)
{
  const struct boxer_registry_config *r;

  expect_ok ("{\"registries\": {"
             "  \"mirrored.example\": {\"mirror\": \"http://127.0.0.1:5000\"},"
             "  \"localhost:5000\": {\"insecure\": true},"
             "  \"registry.example:443\": {\"username\": \"u\", \"password\": \"p w\"},"
             "  \"[::1]:5001\": {}},"
             " \"image_platform\": \"linux/arm64/v8\", \"pull_policy\": \"always\","
             " \"images_budget_bytes\": 1048576, \"registry_timeout_secs\": 5}");
  ck_assert_uint_eq (cfg.n_registries, 4);
  r = boxer_config_registry (&cfg, "mirrored.example");
  ck_assert_ptr_nonnull (r);
  ck_assert_str_eq (r->mirror, "http://127.0.0.1:5000");
  ck_assert (!r->insecure);
  ck_assert_ptr_null (r->username);
  r = boxer_config_registry (&cfg, "localhost:5000");
  ck_assert (r->insecure);
  ck_assert_ptr_null (r->mirror);
  r = boxer_config_registry (&cfg, "registry.example:443");
  ck_assert_str_eq (r->username, "u");
  ck_assert_str_eq (r->password, "p w");
  ck_assert_ptr_nonnull (boxer_config_registry (&cfg, "[::1]:5001"));
  /* Keys are matched exactly: a port makes another registry.  */
  ck_assert_ptr_null (boxer_config_registry (&cfg, "registry.example"));
  ck_assert_str_eq (cfg.image_platform, "linux/arm64/v8");
  ck_assert_int_eq (cfg.pull_policy, BOXER_PULL_ALWAYS);
  ck_assert_int_eq (cfg.images_budget_bytes, 1048576);
  ck_assert_int_eq (cfg.registry_timeout_secs, 5);

  /* A later document replaces the whole map.  */
  expect_ok ("{\"registries\": {\"localhost:5000\": {\"insecure\": false}},"
             " \"pull_policy\": \"never\"}");
  ck_assert_uint_eq (cfg.n_registries, 1);
  ck_assert (!boxer_config_registry (&cfg, "localhost:5000")->insecure);
  ck_assert_int_eq (cfg.pull_policy, BOXER_PULL_NEVER);
  expect_ok ("{\"registries\": {}, \"pull_policy\": \"if-not-present\"}");
  ck_assert_uint_eq (cfg.n_registries, 0);
  ck_assert_int_eq (cfg.pull_policy, BOXER_PULL_IF_NOT_PRESENT);
}
END_TEST

START_TEST (test_registries_invalid)
{
  expect_invalid ("{\"registries\": []}",
                  "config: 'registries' must be an object keyed by registry host");
  expect_invalid ("{\"registries\": {\"localhost:5000\": true}}",
                  "config: registries.localhost:5000 must be an object");
  expect_invalid ("{\"registries\": {\"localhost:5000\": {\"insecure\": \"yes\"}}}",
                  "config: 'registries.localhost:5000.insecure' must be true or false");
  expect_invalid ("{\"registries\": {\"localhost:5000\": {\"mirrors\": \"http://x\"}}}",
                  "config: unknown field 'registries.localhost:5000.mirrors'");
  expect_invalid ("{\"registries\": {\"http://localhost:5000\": {}}}",
                  "config: 'registries' has key 'http://localhost:5000', which is not a "
                  "registry host");
  expect_invalid ("{\"registries\": {\"\": {}}}", "which is not a registry host");
  expect_invalid ("{\"registries\": {\"a/b\": {}}}", "key 'a/b'");
  expect_invalid ("{\"registries\": {\"mirrored.example\": {\"mirror\": \"127.0.0.1:5000\"}}}",
                  "config: 'registries.mirrored.example.mirror' must be http://HOST[:PORT] or "
                  "https://HOST[:PORT]");
  expect_invalid ("{\"registries\": {\"mirrored.example\": {\"mirror\": \"ftp://127.0.0.1\"}}}",
                  "'registries.mirrored.example.mirror' must be http://HOST");
  expect_invalid ("{\"registries\": {\"mirrored.example\": {\"mirror\": \"http://h/path\"}}}",
                  "'registries.mirrored.example.mirror' must be");
  expect_invalid ("{\"registries\": {\"mirrored.example\": {\"mirror\": \"http://\"}}}",
                  "'registries.mirrored.example.mirror' must be");
  expect_invalid ("{\"registries\": {\"r.example\": {\"username\": \"u\"}}}",
                  "config: 'registries.r.example' needs both 'username' and 'password', or "
                  "neither");
  expect_invalid ("{\"registries\": {\"r.example\": {\"password\": \"p\"}}}",
                  "needs both 'username' and 'password'");
  expect_invalid ("{\"registries\": {\"r.example\": {\"password\": \"\"}}}",
                  "'registries.r.example.password' must be a non-empty string");
  /* A failed map leaves the one before it.  */
  ck_assert_uint_eq (cfg.n_registries, 0);
}
END_TEST

START_TEST (test_pull_settings_invalid)
{
  expect_invalid ("{\"pull_policy\": \"sometimes\"}",
                  "config: 'pull_policy' must be one of \"if-not-present\", \"always\", "
                  "\"never\"");
  expect_invalid ("{\"pull_policy\": 1}", "config: 'pull_policy' must be one of");
  expect_invalid ("{\"pull_policy\": \"always\\u0000x\"}",
                  "config: 'pull_policy' must be one of");
  expect_invalid ("{\"image_platform\": \"amd64\"}",
                  "config: 'image_platform' must be OS/ARCH or OS/ARCH/VARIANT (e.g. "
                  "\"linux/amd64\"), got 'amd64'");
  expect_invalid ("{\"image_platform\": \"linux/\"}", "got 'linux/'");
  expect_invalid ("{\"image_platform\": \"/amd64\"}", "got '/amd64'");
  expect_invalid ("{\"image_platform\": \"linux/amd64/v1/x\"}", "must be OS/ARCH");
  expect_invalid ("{\"image_platform\": \"Linux/AMD64\"}", "must be OS/ARCH");
  expect_invalid ("{\"images_budget_bytes\": -1}",
                  "config: 'images_budget_bytes' must be between 0 and");
  expect_invalid ("{\"images_budget_bytes\": 1.5}",
                  "config: 'images_budget_bytes' must be an integer");
  expect_invalid ("{\"registry_timeout_secs\": 0}",
                  "config: 'registry_timeout_secs' must be between 1 and 3600");
}
END_TEST

/* Networks of runs: types here, meaning at executor start-up.  */
START_TEST (test_network_defaults)
{
  ck_assert_str_eq (cfg.sandbox_subnet, "10.200.0.0/16");
  ck_assert_int_eq (boxer_strv_len (cfg.dns_servers), 2);
  ck_assert_str_eq (cfg.dns_servers[0], "8.8.8.8");
  ck_assert_str_eq (cfg.dns_servers[1], "8.8.4.4");
  ck_assert_int_eq (boxer_strv_len (cfg.sandbox_deny_ranges), 9);
  ck_assert_str_eq (cfg.sandbox_deny_ranges[4], "169.254.0.0/16");
  ck_assert_int_eq (cfg.sandbox_host_allow[0], 0);
  ck_assert (!cfg.allow_host_network);
}
END_TEST

START_TEST (test_network_fields)
{
  expect_ok ("{\"sandbox_subnet\": \"10.77.0.0/24\", \"dns_servers\": [\"10.77.0.1\"],"
             " \"sandbox_deny_ranges\": [\"169.254.0.0/16\"], \"sandbox_host_allow\": [53, 8080],"
             " \"allow_host_network\": true}");
  ck_assert_str_eq (cfg.sandbox_subnet, "10.77.0.0/24");
  ck_assert_int_eq (boxer_strv_len (cfg.dns_servers), 1);
  ck_assert_str_eq (cfg.dns_servers[0], "10.77.0.1");
  ck_assert_int_eq (boxer_strv_len (cfg.sandbox_deny_ranges), 1);
  ck_assert_int_eq (cfg.sandbox_host_allow[0], 53);
  ck_assert_int_eq (cfg.sandbox_host_allow[1], 8080);
  ck_assert_int_eq (cfg.sandbox_host_allow[2], 0);
  ck_assert (cfg.allow_host_network);
  /* Empty lists replace the defaults: no resolver, nothing denied.  */
  expect_ok ("{\"dns_servers\": [], \"sandbox_deny_ranges\": [], \"sandbox_host_allow\": []}");
  ck_assert_ptr_null (cfg.dns_servers[0]);
  ck_assert_ptr_null (cfg.sandbox_deny_ranges[0]);
  ck_assert_int_eq (cfg.sandbox_host_allow[0], 0);
}
END_TEST

START_TEST (test_network_fields_invalid)
{
  expect_invalid ("{\"dns_servers\": \"8.8.8.8\"}",
                  "config: 'dns_servers' must be an array of strings");
  expect_invalid ("{\"dns_servers\": [\"1.1.1.1\", \"\"]}",
                  "config: 'dns_servers[1]' must be a non-empty string without NUL bytes");
  expect_invalid ("{\"dns_servers\": [8]}", "config: 'dns_servers[0]' must be a non-empty string");
  expect_invalid ("{\"dns_servers\": [\"a\\u0000b\"]}", "without NUL bytes");
  expect_invalid ("{\"dns_servers\": [\"1.1.1.1\", \"1.1.1.2\", \"1.1.1.3\", \"1.1.1.4\"]}",
                  "config: 'dns_servers' holds more than 3 entries");
  expect_invalid ("{\"sandbox_deny_ranges\": {}}",
                  "config: 'sandbox_deny_ranges' must be an array of strings");
  expect_invalid ("{\"sandbox_subnet\": \"\"}", "config: 'sandbox_subnet' must be a non-empty string");
  expect_invalid ("{\"sandbox_subnet\": [\"10.0.0.0/8\"]}", "must be a non-empty string");
  expect_invalid ("{\"sandbox_host_allow\": 53}",
                  "config: 'sandbox_host_allow' must be an array of ports");
  expect_invalid ("{\"sandbox_host_allow\": [53, 0]}",
                  "config: 'sandbox_host_allow[1]' must be a port number between 1 and 65535");
  expect_invalid ("{\"sandbox_host_allow\": [65536]}", "'sandbox_host_allow[0]' must be a port");
  expect_invalid ("{\"sandbox_host_allow\": [\"53\"]}", "'sandbox_host_allow[0]' must be a port");
  expect_invalid ("{\"sandbox_host_allow\": [53.5]}", "'sandbox_host_allow[0]' must be a port");
  expect_invalid ("{\"allow_host_network\": \"yes\"}",
                  "config: 'allow_host_network' must be true or false");
  /* A refused list leaves the previous one in place.  */
  ck_assert_int_eq (boxer_strv_len (cfg.dns_servers), 2);
  ck_assert_int_eq (cfg.sandbox_host_allow[0], 0);
}
END_TEST

/* SHA-256 of "abc" and of "0123456789abcdef0123456789abcdef".  */
#define ABC_HASH "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HEX_KEY "0123456789abcdef0123456789abcdef"

START_TEST (test_api_keys)
{
  char hex[65];
  const struct boxer_api_key *k;

  ck_assert_int_eq (cfg.n_api_keys, 0);
  ck_assert_ptr_null (boxer_config_find_key (&cfg, "abc", 3));
  boxer_api_key_hash_hex ("abc", 3, hex);
  ck_assert_str_eq (hex, ABC_HASH);
  boxer_api_key_hash_hex (HEX_KEY, strlen (HEX_KEY), hex);

  {
    cleanup_free char *json = xasprintf (
      "{\"max_limits\": {\"memory_mb\": 2048},"
      " \"api_keys\": ["
      "  {\"name\": \"team-a\", \"sha256\": \"" ABC_HASH "\"},"
      "  {\"name\": \"ci.bot_2\", \"sha256\": \"%s\", \"max_concurrent_runs\": 3,"
      "   \"max_limits\": {\"memory_mb\": 512, \"cpu_cores\": 0.5},"
      "   \"allow_network\": [\"none\", \"sandbox\"], \"allow_images\": true,"
      "   \"allow_sessions\": true}]}",
      hex);
    expect_ok (json);
  }
  ck_assert_int_eq (cfg.n_api_keys, 2);
  /* Left out: nothing beyond "none", no images, the config's maximums.  */
  k = boxer_config_key_by_name (&cfg, "team-a");
  ck_assert_ptr_nonnull (k);
  ck_assert (!k->allow_network_sandbox && !k->allow_network_host && !k->allow_images
             && !k->allow_sessions);
  ck_assert_int_eq (k->max_concurrent_runs, 0);
  ck_assert_int_eq (k->max_limits.memory_mb, 2048);
  ck_assert_int_eq (k->max_limits.wall_clock_secs, cfg.max_limits.wall_clock_secs);
  ck_assert (k->max_limits.cpu_cores == cfg.max_limits.cpu_cores);
  k = boxer_config_key_by_name (&cfg, "ci.bot_2");
  ck_assert (k->allow_network_sandbox && !k->allow_network_host && k->allow_images
             && k->allow_sessions);
  ck_assert_int_eq (k->max_concurrent_runs, 3);
  ck_assert_int_eq (k->max_limits.memory_mb, 512);
  ck_assert (k->max_limits.cpu_cores == 0.5);
  ck_assert_int_eq (k->max_limits.nofile, cfg.max_limits.nofile);

  /* Found by the secret, never by its hash or a prefix.  */
  ck_assert_ptr_eq (boxer_config_find_key (&cfg, "abc", 3), boxer_config_key_by_name (&cfg, "team-a"));
  ck_assert_ptr_eq (boxer_config_find_key (&cfg, HEX_KEY, strlen (HEX_KEY)), k);
  ck_assert_ptr_null (boxer_config_find_key (&cfg, "ab", 2));
  ck_assert_ptr_null (boxer_config_find_key (&cfg, "abcd", 4));
  ck_assert_ptr_null (boxer_config_find_key (&cfg, ABC_HASH, 64));
  ck_assert_ptr_null (boxer_config_find_key (&cfg, "", 0));
  ck_assert_ptr_null (boxer_config_key_by_name (&cfg, "team-b"));

  /* A later file's list replaces the whole list.  */
  expect_ok ("{\"api_keys\": []}");
  ck_assert_int_eq (cfg.n_api_keys, 0);
}
END_TEST

START_TEST (test_warm_pool)
{
  ck_assert_int_eq (cfg.n_warm_pool, 0);
  ck_assert_ptr_null (cfg.init_path);
  expect_ok ("{\"init_path\": \"/opt/boxer-init\", \"warm_pool\": ["
             " {\"image\": \"python:3.12\", \"size\": 4},"
             " {\"image\": \"localhost:5000/b/busybox:1\", \"network\": \"none\", \"size\": 0}]}");
  ck_assert_str_eq (cfg.init_path, "/opt/boxer-init");
  ck_assert_int_eq (cfg.n_warm_pool, 2);
  ck_assert_str_eq (cfg.warm_pool[0].image, "python:3.12");
  ck_assert_str_eq (cfg.warm_pool[0].network, "none");
  ck_assert_int_eq (cfg.warm_pool[0].size, 4);
  ck_assert_int_eq (cfg.warm_pool[1].size, 0);
  /* One image, warmed for both networks.  */
  expect_ok ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1},"
             " {\"image\": \"a\", \"network\": \"sandbox\", \"size\": 1}]}");
  ck_assert_str_eq (cfg.warm_pool[1].network, "sandbox");
  /* A later file's list replaces the whole list.  */
  expect_ok ("{\"warm_pool\": []}");
  ck_assert_int_eq (cfg.n_warm_pool, 0);

  expect_invalid ("{\"warm_pool\": {}}", "config: 'warm_pool' must be an array of at most 16");
  expect_invalid ("{\"warm_pool\": [\"python\"]}", "config: 'warm_pool' entries must be objects");
  expect_invalid ("{\"warm_pool\": [{\"size\": 1}]}", "entries must be objects");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"\", \"size\": 1}]}", "entries must be objects");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\"}]}",
                  "config: 'warm_pool[0].size' must be an integer from 0 to 64");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 65}]}", "from 0 to 64");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": -1}]}", "from 0 to 64");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1.5}]}", "from 0 to 64");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1, \"network\": \"host\"}]}",
                  "config: 'warm_pool[0].network' is 'host': a pool warms \"none\" or "
                  "\"sandbox\"");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1, \"network\": \"Sandbox\"}]}",
                  "is 'Sandbox'");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1, \"network\": 1}]}",
                  "entries must be objects");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1, \"sizes\": 1}]}",
                  "config: 'warm_pool[0]' has an unknown field 'sizes'");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1},"
                  " {\"image\": \"a\", \"size\": 2}]}",
                  "config: 'warm_pool[1]' warms 'a' with network 'none' again");
  expect_invalid ("{\"warm_pool\": [{\"image\": \"a\", \"size\": 1, \"network\": \"sandbox\"},"
                  " {\"image\": \"a\", \"size\": 2, \"network\": \"sandbox\"}]}",
                  "config: 'warm_pool[1]' warms 'a' with network 'sandbox' again");
  /* The last good list stays.  */
  ck_assert_int_eq (cfg.n_warm_pool, 0);
}
END_TEST

START_TEST (test_api_keys_invalid)
{
  expect_invalid ("{\"api_keys\": {}}", "config: 'api_keys' must be an array of key objects");
  expect_invalid ("{\"api_keys\": [\"k\"]}", "config: 'api_keys[0]' must be an object");
  expect_invalid ("{\"api_keys\": [{\"sha256\": \"" ABC_HASH "\"}]}",
                  "config: 'api_keys[0].name' must be 1 to 64 characters");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a b\", \"sha256\": \"" ABC_HASH "\"}]}",
                  "'api_keys[0].name' must be");
  expect_invalid ("{\"api_keys\": [{\"name\": \"\", \"sha256\": \"" ABC_HASH "\"}]}",
                  "'api_keys[0].name' must be");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\\u0000b\", \"sha256\": \"" ABC_HASH "\"}]}",
                  "'api_keys[0].name' must be");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\"}]}",
                  "config: 'api_keys[0].sha256' must be the 64 hex digits");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"secret-key-itself\"}]}",
                  "never the key itself");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": "
                  "\"zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}",
                  "'api_keys[0].sha256' must be");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\"},"
                  " {\"name\": \"a\", \"sha256\": "
                  "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
                  "config: 'api_keys[1].name' is 'a' again");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\"},"
                  " {\"name\": \"b\", \"sha256\": \"" ABC_HASH "\"}]}",
                  "config: 'api_keys[1].sha256' is the hash of key 'a' too");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\", "
                  "\"allow_network\": [\"everything\"]}]}",
                  "config: 'api_keys[0].allow_network' must be an array of");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\", "
                  "\"allow_network\": \"sandbox\"}]}",
                  "'api_keys[0].allow_network' must be an array");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\", "
                  "\"allow_sessions\": \"yes\"}]}",
                  "config: 'api_keys[0].allow_sessions' must be true or false");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\", "
                  "\"max_concurrent_runs\": 0}]}",
                  "config: 'api_keys[0].max_concurrent_runs' must be between 1 and 4096");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\", "
                  "\"allow_images\": 1}]}",
                  "config: 'api_keys[0].allow_images' must be true or false");
  /* A refused list leaves the previous one (none) in place.  */
  ck_assert_int_eq (cfg.n_api_keys, 0);
  /* A key narrows the service; it never widens it.  */
  expect_invalid ("{\"max_limits\": {\"memory_mb\": 1024}, \"api_keys\": [{\"name\": \"a\", "
                  "\"sha256\": \"" ABC_HASH "\", \"max_limits\": {\"memory_mb\": 2048}}]}",
                  "config: 'api_keys[0].max_limits.memory_mb' is above 'max_limits.memory_mb'");
  expect_invalid ("{\"api_keys\": [{\"name\": \"a\", \"sha256\": \"" ABC_HASH "\", "
                  "\"max_limits\": {\"memory_mb\": 1}}]}",
                  "config: 'api_keys[0].max_limits.memory_mb' must be between 16 and");
}
END_TEST

static Suite *
config_suite (void)
{
  Suite *s = suite_create ("config");
  TCase *tc = tcase_create ("config");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_defaults);
  tcase_add_test (tc, test_defaults_home_not_absolute);
  tcase_add_test (tc, test_empty_object);
  tcase_add_test (tc, test_every_field);
  tcase_add_test (tc, test_partial_limits_keep_the_rest);
  tcase_add_test (tc, test_ignore_cgroups_false);
  tcase_add_test (tc, test_unknown_field);
  tcase_add_test (tc, test_unknown_nested_field);
  tcase_add_test (tc, test_wrong_types);
  tcase_add_test (tc, test_nul_in_string);
  tcase_add_test (tc, test_out_of_range);
  tcase_add_test (tc, test_defaults_above_max);
  tcase_add_test (tc, test_defaults_raised_with_max);
  tcase_add_test (tc, test_home_tilde);
  tcase_add_test (tc, test_home_relative);
  tcase_add_test (tc, test_malformed);
  tcase_add_test (tc, test_load_order);
  tcase_add_test (tc, test_load_home_follows_home_env);
  tcase_add_test (tc, test_load_missing_explicit);
  tcase_add_test (tc, test_load_invalid_file);
  tcase_add_test (tc, test_load_expands_home);
  tcase_add_test (tc, test_registry_defaults);
  tcase_add_test (tc, test_untrusted_image_settings);
  tcase_add_test (tc, test_registries);
  tcase_add_test (tc, test_registries_invalid);
  tcase_add_test (tc, test_pull_settings_invalid);
  tcase_add_test (tc, test_network_defaults);
  tcase_add_test (tc, test_network_fields);
  tcase_add_test (tc, test_network_fields_invalid);
  tcase_add_test (tc, test_api_keys);
  tcase_add_test (tc, test_api_keys_invalid);
  tcase_add_test (tc, test_warm_pool);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (config_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
