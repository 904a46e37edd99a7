/* boxer-executor: the one root process of Boxer (executor/daemon.h).  A
   master process sets up what outlives a crash (the socket, runsc's
   checks, the network) and supervises one server process, restarting it
   if it dies; each start sweeps what a dead one left.  */
#include <config.h>

#include <getopt.h>
#include <signal.h>

#include "common/fsutil.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/pool.h"
#include "daemon.h"
#include "executor.h"

#define PROGRAM "boxer-executor"

static volatile sig_atomic_t server_stop;

struct app
{
  struct boxer_config cfg;
  struct boxer_executor *ex;
  int listen_fd;
  uid_t worker_uid;
};

static void
on_stop (int sig)
{
  (void) sig;
  server_stop = 1;
}

static void
usage (FILE *f)
{
  fprintf (f,
           "usage: " PROGRAM " [--config FILE] [--ready-file PATH]\n"
           "\n"
           "Run Boxer's sandboxes for the boxer-fcgi workers, which connect to the\n"
           "socket the config names (executor_socket; default <home>/executor.sock).\n"
           "Runs as root, in the foreground, until SIGTERM or SIGINT.  --ready-file\n"
           "PATH is written once the home is laid out and the socket listens, so that\n"
           "a script starts the workers only then (contrib/pool.sh).\n");
}

static int
server_main (void *data)
{
  struct app *app = data;
  cleanup_error struct boxer_error *err = NULL;
  struct sigaction sa = { .sa_handler = on_stop };

  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  /* Whatever a server killed before us left behind, once its runs are
     dead too.  */
  if (boxer_executor_sweep_orphans (app->ex, 30000, &err) < 0)
    {
      boxer_log_warning ("sweep: %s", err->msg);
      boxer_error_release (&err);
    }
  if (boxer_daemon_serve (app->ex, &app->cfg, app->listen_fd, app->worker_uid, &server_stop,
                          &err) < 0)
    {
      boxer_log_error ("%s", err->msg);
      return 1;
    }
  return 0;
}

static void
after_stop (void *data)
{
  struct app *app = data;
  cleanup_error struct boxer_error *err = NULL;

  if (boxer_executor_shutdown (app->ex, &err) < 0)
    boxer_log_warning ("shutdown: %s", err->msg);
}

int
main (int argc, char **argv)
{
  static const struct option options[] = {
    { "config", required_argument, NULL, 'c' },
    { "ready-file", required_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *source = NULL;
  cleanup_free char *socket_path = NULL;
  const char *config_path = NULL, *ready_file = NULL;
  struct app app = { .listen_fd = -1, .worker_uid = (uid_t) -1 };
  gid_t worker_gid = (gid_t) -1;
  int opt, ret = 1;

  while ((opt = getopt_long (argc, argv, "c:r:h", options, NULL)) != -1)
    switch (opt)
      {
      case 'c':
        config_path = optarg;
        break;
      case 'r':
        ready_file = optarg;
        break;
      case 'h':
        usage (stdout);
        return 0;
      default:
        usage (stderr);
        return 2;
      }

  boxer_log_init (PROGRAM, BOXER_LOG_INFO);
  signal (SIGPIPE, SIG_IGN);
  if (geteuid () != 0)
    {
      fprintf (stderr, PROGRAM ": must run as root: it creates cgroups, network namespaces "
                       "and sandboxes\n");
      return 1;
    }
  if (boxer_config_load (&app.cfg, config_path, &source, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      return 1;
    }
  boxer_log_info ("config from %s; home %s", source, app.cfg.home);
  if (app.cfg.worker_user
      && boxer_layout_worker_ids (&app.cfg, &app.worker_uid, &worker_gid, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      goto out;
    }

  socket_path = boxer_config_executor_socket (&app.cfg);
  if (boxer_layout_prepare (&app.cfg, &err) < 0
      || boxer_executor_new (&app.ex, &app.cfg, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      goto out;
    }
  app.listen_fd = boxer_daemon_listen (socket_path, worker_gid, &err);
  if (app.listen_fd < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      goto out;
    }
  boxer_log_info ("runsc %s, platform %s, cgroup %s (runs in %s); listening on %s",
                  boxer_executor_runsc_version (app.ex), boxer_executor_platform (app.ex),
                  boxer_executor_cgroup_mode (app.ex), boxer_executor_cgroup_runs_dir (app.ex),
                  socket_path);

  if (ready_file && boxer_write_file_atomic (ready_file, "ready\n", 6, 0644, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      goto out;
    }
  /* Runs in progress end first, within the longest wall clock a run may
     have.  */
  ret = boxer_pool_run (1, server_main, after_stop, &app,
                        (int) app.cfg.max_limits.wall_clock_secs + 10);
  unlink (socket_path);

out:
  if (app.listen_fd >= 0)
    close (app.listen_fd);
  boxer_executor_free (app.ex);
  boxer_config_release (&app.cfg);
  return ret;
}
