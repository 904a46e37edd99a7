/* Unit tests for executor/spec.c: argv, environment and config.json.  */
#include <config.h>

#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>

#include "executor/spec.h"

static const struct boxer_limits limits = {
  .cpu_cores = 1.5, .memory_mb = 300, .wall_clock_secs = 10, .pids_limit = 32, .nofile = 128,
};

static json_object *
build (const char *cgroups_path)
{
  char *env[] = { (char *) "PATH=/bin", (char *) "A=1", NULL };
  struct boxer_spec_input in = {
    .rootfs = "/var/lib/boxer/images/rootfs/abc/rootfs",
    .init_path = "/usr/libexec/boxer/boxer-init",
    .env = env,
    .hostname = "boxer",
    .cgroups_path = cgroups_path,
    .limits = &limits,
  };
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *text = NULL;

  ck_assert_int_eq (boxer_spec_build (&in, &text, &err), 0);
  ck_assert_ptr_null (err);
  return json_tokener_parse (text);
}

static json_object *
at (json_object *o, const char *path)
{
  char buf[256];
  char *save = NULL;

  snprintf (buf, sizeof buf, "%s", path);
  for (char *k = strtok_r (buf, ".", &save); k; k = strtok_r (NULL, ".", &save))
    {
      json_object *next = NULL;
      if (json_object_is_type (o, json_type_array))
        next = json_object_array_get_idx (o, atoi (k));
      else
        json_object_object_get_ex (o, k, &next);
      ck_assert_msg (next != NULL, "missing '%s' in '%s'", k, path);
      o = next;
    }
  return o;
}

static json_object *
rlimit_named (json_object *spec, const char *type)
{
  json_object *rl = at (spec, "process.rlimits");
  for (size_t i = 0; i < json_object_array_length (rl); i++)
    {
      json_object *r = json_object_array_get_idx (rl, i);
      if (strcmp (json_object_get_string (at (r, "type")), type) == 0)
        return r;
    }
  ck_abort_msg ("no rlimit %s", type);
  return NULL;
}


START_TEST (test_spec_root_and_linux)
{
  json_object *spec = build ("/boxer-r_1");
  json_object *mounts;
  bool have_tmp = false;

  ck_assert_str_eq (json_object_get_string (at (spec, "root.path")),
                    "/var/lib/boxer/images/rootfs/abc/rootfs");
  /* runsc's private memory overlay takes the writes.  */
  ck_assert (!json_object_get_boolean (at (spec, "root.readonly")));
  ck_assert_str_eq (json_object_get_string (at (spec, "hostname")), "boxer");
  ck_assert_str_eq (json_object_get_string (at (spec, "linux.cgroupsPath")), "/boxer-r_1");
  ck_assert_int_eq (json_object_get_int64 (at (spec, "linux.resources.memory.limit")),
                    300LL << 20);
  ck_assert_int_eq (json_object_get_int64 (at (spec, "linux.resources.cpu.quota")), 150000);
  ck_assert_int_eq (json_object_get_int64 (at (spec, "linux.resources.cpu.period")), 100000);

  mounts = at (spec, "mounts");
  for (size_t i = 0; i < json_object_array_length (mounts); i++)
    {
      json_object *m = json_object_array_get_idx (mounts, i);
      if (strcmp (json_object_get_string (at (m, "destination")), "/tmp") == 0)
        {
          have_tmp = true;
          ck_assert_str_eq (json_object_get_string (at (m, "type")), "tmpfs");
          ck_assert_str_eq (json_object_to_json_string (at (m, "options")),
                            "[ \"nosuid\", \"nodev\", \"mode=1777\", \"size=300m\" ]");
        }
    }
  ck_assert (have_tmp);
  ck_assert_int_eq (json_object_array_length (at (spec, "linux.namespaces")), 5);
  json_object_put (spec);
}
END_TEST

START_TEST (test_spec_without_cgroups)
{
  json_object *spec = build (NULL);
  json_object *unused;
  ck_assert (!json_object_object_get_ex (at (spec, "linux"), "cgroupsPath", &unused));
  json_object_put (spec);
}
END_TEST

START_TEST (test_spec_rejects_bad_input)
{
  struct boxer_spec_input in = {
    .rootfs = "/r", .hostname = "h", .limits = &limits,
  };
  cleanup_error struct boxer_error *err = NULL;
  char *out = NULL;

  ck_assert_int_lt (boxer_spec_build (&in, &out, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INTERNAL);
  ck_assert_ptr_null (out);
  boxer_error_release (&err);
  in.init_path = "boxer-init";
  ck_assert_int_lt (boxer_spec_build (&in, &out, &err), 0);
  ck_assert_ptr_null (out);
}
END_TEST

/* Uploads are bound read-only, a run's /output read-write, both after the
   sandbox's own mounts and in the order given.  */
START_TEST (test_spec_binds)
{
  const struct boxer_spec_bind binds[] = {
    { "/home/b/files/0", "/workspace/main.py", false },
    { "/home/b/output", "/output", true },
  };
  struct boxer_spec_input in = {
    .rootfs = "/r", .init_path = "/b/boxer-init", .env = NULL, .hostname = "boxer",
    .limits = &limits, .binds = binds, .n_binds = 2,
  };
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *text = NULL;
  json_object *spec, *mounts, *m;
  size_t n;

  ck_assert_int_eq (boxer_spec_build (&in, &text, &err), 0);
  spec = json_tokener_parse (text);
  mounts = at (spec, "mounts");
  n = json_object_array_length (mounts);
  ck_assert_uint_ge (n, 3);

  m = json_object_array_get_idx (mounts, n - 2);
  ck_assert_str_eq (json_object_get_string (at (m, "destination")), "/workspace/main.py");
  ck_assert_str_eq (json_object_get_string (at (m, "source")), "/home/b/files/0");
  ck_assert_str_eq (json_object_get_string (at (m, "type")), "bind");
  ck_assert_str_eq (json_object_to_json_string (at (m, "options")),
                    "[ \"rbind\", \"ro\", \"nosuid\", \"nodev\" ]");

  m = json_object_array_get_idx (mounts, n - 1);
  ck_assert_str_eq (json_object_get_string (at (m, "destination")), "/output");
  ck_assert_str_eq (json_object_get_string (at (m, "source")), "/home/b/output");
  ck_assert_str_eq (json_object_to_json_string (at (m, "options")),
                    "[ \"rbind\", \"rw\", \"nosuid\", \"nodev\" ]");
  json_object_put (spec);
}
END_TEST

/* boxer-init is the process, as root with only what it needs to start
   programs as another user; it is mounted read-only.  */
START_TEST (test_spec_init)
{
  json_object *spec = build ("/boxer-r_1");
  json_object *mounts, *m = NULL;
  bool found = false;

  ck_assert_int_eq (json_object_array_length (at (spec, "process.args")), 1);
  ck_assert_str_eq (json_object_get_string (at (spec, "process.args.0")), BOXER_INIT_MOUNT);
  ck_assert_str_eq (json_object_get_string (at (spec, "process.cwd")), "/");
  ck_assert_int_eq (json_object_get_int (at (spec, "process.user.uid")), 0);
  ck_assert_int_eq (json_object_get_int (at (spec, "process.user.gid")), 0);
  ck_assert (json_object_get_boolean (at (spec, "process.noNewPrivileges")));
  ck_assert (!json_object_get_boolean (at (spec, "process.terminal")));
  ck_assert_int_eq (json_object_array_length (at (spec, "process.env")), 2);
  /* Nothing its programs could inherit (boxer-init drops the rest before
     it starts them: check_init.c), and never CAP_SYS_RESOURCE.  */
  ck_assert_int_eq (json_object_array_length (at (spec, "process.capabilities.ambient")), 0);
  ck_assert_int_eq (json_object_array_length (at (spec, "process.capabilities.inheritable")), 0);
  ck_assert_str_eq (json_object_to_json_string (at (spec, "process.capabilities.bounding")),
                    "[ \"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_DAC_READ_SEARCH\", "
                    "\"CAP_FOWNER\", \"CAP_KILL\", \"CAP_SETGID\", \"CAP_SETUID\", "
                    "\"CAP_SETPCAP\", \"CAP_SYS_ADMIN\" ]");
  ck_assert_str_eq (json_object_to_json_string (at (spec, "process.capabilities.effective")),
                    json_object_to_json_string (at (spec, "process.capabilities.bounding")));
  ck_assert_int_eq (json_object_get_int64 (at (rlimit_named (spec, "RLIMIT_NPROC"), "hard")), 32);
  ck_assert_int_eq (json_object_get_int64 (at (rlimit_named (spec, "RLIMIT_NOFILE"), "soft")), 128);
  mounts = at (spec, "mounts");
  for (size_t i = 0; i < json_object_array_length (mounts); i++)
    {
      m = json_object_array_get_idx (mounts, i);
      if (strcmp (json_object_get_string (at (m, "destination")), BOXER_INIT_MOUNT) == 0)
        {
          found = true;
          break;
        }
    }
  ck_assert (found);
  ck_assert_str_eq (json_object_get_string (at (m, "source")), "/usr/libexec/boxer/boxer-init");
  ck_assert_str_eq (json_object_to_json_string (at (m, "options")),
                    "[ \"rbind\", \"ro\", \"nosuid\", \"nodev\" ]");
  json_object_put (spec);
}
END_TEST

/* The network namespace: a new empty one (none), the run's own by path
   (sandbox), or none at all (host: runsc would otherwise make an empty one).  */
static json_object *
network_namespace (const char *netns_path, bool host_network, size_t *count)
{
  struct boxer_spec_input in = {
    .rootfs = "/r", .init_path = "/b/boxer-init", .env = NULL, .hostname = "boxer",
    .limits = &limits, .netns_path = netns_path, .host_network = host_network,
  };
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *text = NULL;
  json_object *spec, *ns, *found = NULL;

  ck_assert_int_eq (boxer_spec_build (&in, &text, &err), 0);
  spec = json_tokener_parse (text);
  ns = at (spec, "linux.namespaces");
  *count = json_object_array_length (ns);
  for (size_t i = 0; i < *count; i++)
    if (strcmp (json_object_get_string (at (json_object_array_get_idx (ns, i), "type")),
                "network")
        == 0)
      found = json_object_get (json_object_array_get_idx (ns, i));
  json_object_put (spec);
  return found;
}

START_TEST (test_spec_network)
{
  size_t n;
  json_object *ns, *path;

  ns = network_namespace (NULL, false, &n);
  ck_assert_ptr_nonnull (ns);
  ck_assert (!json_object_object_get_ex (ns, "path", &path));
  ck_assert_uint_eq (n, 5);
  json_object_put (ns);

  ns = network_namespace ("/home/b/netns/r_1", false, &n);
  ck_assert_str_eq (json_object_get_string (at (ns, "path")), "/home/b/netns/r_1");
  ck_assert_uint_eq (n, 5);
  json_object_put (ns);

  ns = network_namespace (NULL, true, &n);
  ck_assert_ptr_null (ns);
  ck_assert_uint_eq (n, 4);
}
END_TEST

START_TEST (test_resolve_args)
{
  char *req[] = { (char *) "echo", (char *) "x", NULL };
  char *empty[] = { NULL };
  char *ep[] = { (char *) "/entry", NULL };
  char *cmd[] = { (char *) "a", (char *) "b", NULL };
  cleanup_error struct boxer_error *err = NULL;
  char **out = NULL;

  /* The request's cmd wins; the entrypoint is not prepended.  */
  ck_assert_int_eq (boxer_spec_resolve_args (req, ep, cmd, &out, &err), 0);
  ck_assert_int_eq (boxer_strv_len (out), 2);
  ck_assert_str_eq (out[0], "echo");
  boxer_strv_free (out);

  ck_assert_int_eq (boxer_spec_resolve_args (NULL, ep, cmd, &out, &err), 0);
  ck_assert_int_eq (boxer_strv_len (out), 3);
  ck_assert_str_eq (out[0], "/entry");
  ck_assert_str_eq (out[2], "b");
  boxer_strv_free (out);

  ck_assert_int_eq (boxer_spec_resolve_args (NULL, NULL, cmd, &out, &err), 0);
  ck_assert_str_eq (out[0], "a");
  boxer_strv_free (out);

  out = NULL;
  ck_assert_int_lt (boxer_spec_resolve_args (NULL, NULL, empty, &out, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
  ck_assert_ptr_nonnull (strstr (err->msg, "send 'cmd'"));
  ck_assert_ptr_null (out);
  boxer_error_release (&err);

  ck_assert_int_lt (boxer_spec_resolve_args (empty, ep, cmd, &out, &err), 0);
  ck_assert_int_eq (err->category, BOXER_ERR_INVALID);
}
END_TEST

START_TEST (test_merge_env)
{
  char *image[] = { (char *) "PATH=/usr/bin", (char *) "LANG=C.UTF-8", (char *) "X=1", NULL };
  char *request[] = { (char *) "LANG=C", (char *) "NEW=a=b", NULL };
  char **env = boxer_spec_merge_env (image, request);

  ck_assert_int_eq (boxer_strv_len (env), 5);
  ck_assert_str_eq (env[0], "PATH=/usr/bin");
  ck_assert_str_eq (env[1], "LANG=C");
  ck_assert_str_eq (env[2], "X=1");
  ck_assert_str_eq (env[3], "NEW=a=b");
  ck_assert_str_eq (env[4], "HOME=/tmp");
  boxer_strv_free (env);

  /* Nothing from the image or request: the defaults, and nothing of ours.  */
  setenv ("BOXER_SECRET", "leak", 1);
  env = boxer_spec_merge_env (NULL, NULL);
  ck_assert_int_eq (boxer_strv_len (env), 2);
  ck_assert_str_eq (env[0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  ck_assert_str_eq (env[1], "HOME=/tmp");
  boxer_strv_free (env);

  /* A name that is a prefix of another is a different name.  */
  char *img2[] = { (char *) "PATHX=1", NULL };
  char *req2[] = { (char *) "PATH=/x", NULL };
  env = boxer_spec_merge_env (img2, req2);
  ck_assert_int_eq (boxer_strv_len (env), 3);
  ck_assert_str_eq (env[0], "PATHX=1");
  ck_assert_str_eq (env[1], "PATH=/x");
  boxer_strv_free (env);
}
END_TEST

static Suite *
spec_suite (void)
{
  Suite *s = suite_create ("spec");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_spec_root_and_linux);
  tcase_add_test (tc, test_spec_without_cgroups);
  tcase_add_test (tc, test_spec_rejects_bad_input);
  tcase_add_test (tc, test_spec_binds);
  tcase_add_test (tc, test_spec_init);
  tcase_add_test (tc, test_spec_network);
  tcase_add_test (tc, test_resolve_args);
  tcase_add_test (tc, test_merge_env);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (spec_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
