#include <config.h>

#include "spec.h"

#include <json-c/json.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int
boxer_spec_resolve_args (char *const *request_cmd, char *const *entrypoint,
                         char *const *image_cmd, char ***out, struct boxer_error **err)
{
  size_t ne, nc;
  char **argv;

  if (request_cmd)
    {
      if (request_cmd[0] == NULL)
        return boxer_error_make (err, BOXER_ERR_INVALID, "'cmd' must not be empty");
      *out = boxer_strv_dup (request_cmd);
      return 0;
    }

  ne = boxer_strv_len (entrypoint);
  nc = boxer_strv_len (image_cmd);
  if (ne + nc == 0)
    return boxer_error_make (err, BOXER_ERR_INVALID,
                             "the image has no Entrypoint or Cmd; send 'cmd' with the argv to run");
  argv = xmalloc0 ((ne + nc + 1) * sizeof *argv);
  for (size_t i = 0; i < ne; i++)
    argv[i] = xstrdup (entrypoint[i]);
  for (size_t i = 0; i < nc; i++)
    argv[ne + i] = xstrdup (image_cmd[i]);
  *out = argv;
  return 0;
}

static size_t
name_len (const char *kv)
{
  const char *eq = strchr (kv, '=');
  return eq ? (size_t) (eq - kv) : strlen (kv);
}

/* Index of the entry named like kv in env[0..n), or n.  */
static size_t
find_name (char **env, size_t n, const char *kv)
{
  size_t len = name_len (kv);
  for (size_t i = 0; i < n; i++)
    if (name_len (env[i]) == len && strncmp (env[i], kv, len) == 0)
      return i;
  return n;
}

char **
boxer_spec_merge_env (char *const *image_env, char *const *request_env)
{
  size_t ni = boxer_strv_len (image_env), nr = boxer_strv_len (request_env);
  char **env = xmalloc0 ((ni + nr + 3) * sizeof *env);
  size_t n = 0;

  for (size_t pass = 0; pass < 2; pass++)
    {
      char *const *src = pass == 0 ? image_env : request_env;
      for (size_t i = 0; src && src[i]; i++)
        {
          size_t at = find_name (env, n, src[i]);
          if (at < n)
            free (env[at]);
          else
            n++;
          env[at] = xstrdup (src[i]);
        }
    }
  if (find_name (env, n, "PATH=") == n)
    env[n++] = xstrdup ("PATH=" DEFAULT_PATH);
  /* The run's user has no home directory; /tmp is the one writable place
     every image has.  */
  if (find_name (env, n, "HOME=") == n)
    env[n++] = xstrdup ("HOME=/tmp");
  env[n] = NULL;
  return env;
}

static json_object *
strv_to_json (char *const *strv)
{
  json_object *a = json_object_new_array ();
  for (size_t i = 0; strv && strv[i]; i++)
    json_object_array_add (a, json_object_new_string (strv[i]));
  return a;
}

static json_object *
rlimit (const char *type, int64_t value)
{
  json_object *r = json_object_new_object ();
  json_object_object_add (r, "type", json_object_new_string (type));
  json_object_object_add (r, "hard", json_object_new_int64 (value));
  json_object_object_add (r, "soft", json_object_new_int64 (value));
  return r;
}

static json_object *
mount_entry (const char *dest, const char *type, const char *source, const char *const *options)
{
  json_object *m = json_object_new_object ();
  json_object *opts = json_object_new_array ();

  json_object_object_add (m, "destination", json_object_new_string (dest));
  json_object_object_add (m, "type", json_object_new_string (type));
  json_object_object_add (m, "source", json_object_new_string (source));
  for (size_t i = 0; options[i]; i++)
    json_object_array_add (opts, json_object_new_string (options[i]));
  json_object_object_add (m, "options", opts);
  return m;
}

static json_object *
build_process (const struct boxer_spec_input *in)
{
  json_object *p = json_object_new_object ();
  json_object *user = json_object_new_object ();
  json_object *caps = json_object_new_object ();
  json_object *rlimits = json_object_new_array ();
  static const char *const cap_sets[] = { "bounding", "effective", "inheritable", "permitted",
                                          "ambient" };

  /* What boxer-init needs to write root-owned files, start programs as
     another user, signal them, read back what they wrote, and give a
     batch's runs their own /tmp (CAP_SYS_ADMIN, for a mount namespace:
     inside gVisor's kernel, not the host's).  Never CAP_SYS_RESOURCE.
     Its programs lose all of them, and the bounding set too (CAP_SETPCAP),
     before they become their user, under which RLIMIT_NPROC binds.  */
  static const char *const init_caps[] = { "CAP_CHOWN", "CAP_DAC_OVERRIDE",
                                           "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_KILL",
                                           "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
                                           "CAP_SYS_ADMIN", NULL };
  const char *init_argv[] = { BOXER_INIT_MOUNT, NULL };

  json_object_object_add (p, "terminal", json_object_new_boolean (0));
  json_object_object_add (user, "uid", json_object_new_int (0));
  json_object_object_add (user, "gid", json_object_new_int (0));
  json_object_object_add (p, "user", user);
  json_object_object_add (p, "args", strv_to_json ((char *const *) init_argv));
  json_object_object_add (p, "env", strv_to_json (in->env));
  json_object_object_add (p, "cwd", json_object_new_string ("/"));
  for (size_t i = 0; i < sizeof cap_sets / sizeof cap_sets[0]; i++)
    {
      json_object *set = json_object_new_array ();
      /* None a program could inherit across its execve.  */
      bool held = strcmp (cap_sets[i], "ambient") != 0 && strcmp (cap_sets[i], "inheritable") != 0;
      for (size_t c = 0; held && init_caps[c]; c++)
        json_object_array_add (set, json_object_new_string (init_caps[c]));
      json_object_object_add (caps, cap_sets[i], set);
    }
  json_object_object_add (p, "capabilities", caps);
  json_object_array_add (rlimits, rlimit ("RLIMIT_NOFILE", in->limits->nofile));
  json_object_array_add (rlimits, rlimit ("RLIMIT_NPROC", in->limits->pids_limit));
  json_object_array_add (rlimits, rlimit ("RLIMIT_CORE", 0));
  json_object_object_add (p, "rlimits", rlimits);
  json_object_object_add (p, "noNewPrivileges", json_object_new_boolean (1));
  return p;
}

static json_object *
build_mounts (const struct boxer_spec_input *in)
{
  static const char *const proc_opts[] = { "nosuid", "noexec", "nodev", NULL };
  static const char *const dev_opts[] = { "nosuid", "strictatime", "mode=755", "size=65536k",
                                          NULL };
  static const char *const shm_opts[] = { "nosuid", "noexec", "nodev", "mode=1777",
                                          "size=65536k", NULL };
  static const char *const sys_opts[] = { "nosuid", "noexec", "nodev", "ro", NULL };
  static const char *const bind_opts[] = { "rbind", "ro", "nosuid", "nodev", NULL };
  static const char *const rw_bind_opts[] = { "rbind", "rw", "nosuid", "nodev", NULL };
  json_object *mounts = json_object_new_array ();
  char tmp_size[64];
  const char *tmp_opts[] = { "nosuid", "nodev", "mode=1777", tmp_size, NULL };

  /* /tmp lives in the sandbox's memory, which the memory cgroup already
     bounds; the size keeps one run from claiming more than its limit.  */
  snprintf (tmp_size, sizeof tmp_size, "size=%lldm", (long long) in->limits->memory_mb);

  json_object_array_add (mounts, mount_entry ("/proc", "proc", "proc", proc_opts));
  json_object_array_add (mounts, mount_entry ("/dev", "tmpfs", "tmpfs", dev_opts));
  json_object_array_add (mounts, mount_entry ("/dev/shm", "tmpfs", "shm", shm_opts));
  json_object_array_add (mounts, mount_entry ("/sys", "sysfs", "sysfs", sys_opts));
  json_object_array_add (mounts, mount_entry ("/tmp", "tmpfs", "tmpfs", tmp_opts));
  json_object_array_add (mounts, mount_entry (BOXER_INIT_MOUNT, "bind", in->init_path,
                                              bind_opts));
  for (size_t i = 0; i < in->n_binds; i++)
    json_object_array_add (mounts, mount_entry (in->binds[i].destination, "bind",
                                                in->binds[i].source,
                                                in->binds[i].writable ? rw_bind_opts
                                                                      : bind_opts));
  return mounts;
}

static json_object *
build_linux (const struct boxer_spec_input *in)
{
  static const char *const namespaces[] = { "pid", "network", "ipc", "uts", "mount" };
  json_object *l = json_object_new_object ();
  json_object *ns = json_object_new_array ();
  json_object *res = json_object_new_object ();
  json_object *mem = json_object_new_object ();
  json_object *cpu = json_object_new_object ();
  const int64_t period = 100000;

  for (size_t i = 0; i < sizeof namespaces / sizeof namespaces[0]; i++)
    {
      bool network = strcmp (namespaces[i], "network") == 0;
      json_object *n;
      /* runsc --network=host shares the host's namespace only when the spec
         asks for none; with one it would create an empty namespace.  */
      if (network && in->host_network)
        continue;
      n = json_object_new_object ();
      json_object_object_add (n, "type", json_object_new_string (namespaces[i]));
      if (network && in->netns_path)
        json_object_object_add (n, "path", json_object_new_string (in->netns_path));
      json_object_array_add (ns, n);
    }
  json_object_object_add (l, "namespaces", ns);

  /* Recorded for runsc's own sizing; the host limits are the cgroups Boxer
     created at cgroupsPath, which runsc leaves as they are.  */
  json_object_object_add (mem, "limit", json_object_new_int64 (in->limits->memory_mb << 20));
  json_object_object_add (res, "memory", mem);
  json_object_object_add (cpu, "period", json_object_new_int64 (period));
  json_object_object_add (cpu, "quota",
                          json_object_new_int64 ((int64_t) (in->limits->cpu_cores * period)));
  json_object_object_add (res, "cpu", cpu);
  json_object_object_add (l, "resources", res);

  if (in->cgroups_path)
    json_object_object_add (l, "cgroupsPath", json_object_new_string (in->cgroups_path));
  return l;
}

int
boxer_spec_build (const struct boxer_spec_input *in, char **out, struct boxer_error **err)
{
  json_object *spec;
  json_object *root;

  if (in->init_path == NULL || in->init_path[0] != '/')
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "spec: boxer-init's path must be absolute");

  spec = json_object_new_object ();
  root = json_object_new_object ();
  json_object_object_add (spec, "ociVersion", json_object_new_string ("1.0.2"));
  json_object_object_add (spec, "process", build_process (in));
  json_object_object_add (root, "path", json_object_new_string (in->rootfs));
  /* Writable, because runsc gives each run a private in-memory upper layer
     (--overlay2=root:memory); the shared directory is never written.  */
  json_object_object_add (root, "readonly", json_object_new_boolean (0));
  json_object_object_add (spec, "root", root);
  json_object_object_add (spec, "hostname", json_object_new_string (in->hostname));
  json_object_object_add (spec, "mounts", build_mounts (in));
  json_object_object_add (spec, "linux", build_linux (in));

  *out = xstrdup (json_object_to_json_string_ext (spec, JSON_C_TO_STRING_PLAIN
                                                          | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (spec);
  return 0;
}
