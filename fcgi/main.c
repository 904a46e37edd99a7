/* boxer-fcgi: the FastCGI application.  Started by spawn-fcgi with the
   listening socket on fd 0; see common/pool.h for the process model.  */
#include <config.h>

#include <fcgiapp.h>
#include <getopt.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "auth.h"
#include "cache/cache.h"
#include "common/fsutil.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/pool.h"
#include "exec_client.h"
#include "handlers.h"
#include "router.h"

#define PROGRAM "boxer-fcgi"

static volatile sig_atomic_t worker_stop;

struct app
{
  struct boxer_server srv;
  struct boxer_config cfg;
  int listen_fd;
};

static void
on_worker_stop (int sig)
{
  worker_stop = 1;
}

static void
usage (FILE *f)
{
  fprintf (f,
           "usage: " PROGRAM " [--config FILE] [--workers N] [--socket PATH]\n"
           "       " PROGRAM " --hash-key < KEYFILE\n"
           "\n"
           "Serve the Boxer API over FastCGI.  Normally started by spawn-fcgi, which\n"
           "passes the listening socket as fd 0; --socket listens on PATH instead.\n"
           "--workers N forks N worker processes and restarts any that die (default 4);\n"
           "0 serves from this process alone.\n"
           "--hash-key reads an API key on standard input and prints the SHA-256 that\n"
           "the config's api_keys[].sha256 holds (make a key with: openssl rand -hex 32).\n");
}

/* Keys shorter than this are refused: a key is a secret, not a password.  */
#define MIN_KEY_BYTES 16

static int
hash_key (void)
{
  char key[BOXER_AUTH_HEADER_MAX + 2], hex[65];
  size_t len = fread (key, 1, sizeof key - 1, stdin);

  /* One line, as `openssl rand -hex 32 > key` writes it.  */
  if (len > 0 && key[len - 1] == '\n')
    len--;
  if (len > 0 && key[len - 1] == '\r')
    len--;
  key[len] = '\0';
  if (len > BOXER_AUTH_HEADER_MAX - 7 || memchr (key, '\n', len) || strlen (key) != len
      || len < MIN_KEY_BYTES)
    {
      fprintf (stderr, PROGRAM ": the key on standard input must be one line of %d to %d bytes; "
                       "make one with: openssl rand -hex 32\n",
               MIN_KEY_BYTES, BOXER_AUTH_HEADER_MAX - 7);
      explicit_bzero (key, sizeof key);
      return 2;
    }
  for (size_t i = 0; i < len; i++)
    if (key[i] <= ' ' || key[i] == 0x7f)
      {
        fprintf (stderr, PROGRAM ": the key must be printable characters without spaces "
                         "(it travels in an HTTP header)\n");
        explicit_bzero (key, sizeof key);
        return 2;
      }
  boxer_api_key_hash_hex (key, len, hex);
  explicit_bzero (key, sizeof key);
  printf ("%s\n", hex);
  return 0;
}

/* Whether the web server's listen address reaches only this host.  */
static bool
listen_addr_is_loopback (const char *addr)
{
  return strncmp (addr, "127.", 4) == 0 || strncmp (addr, "localhost:", 10) == 0
         || strncmp (addr, "[::1]:", 6) == 0;
}

/* The path of the request without its query string.  */
static char *
request_path (FCGX_Request *req)
{
  const char *uri = FCGX_GetParam ("REQUEST_URI", req->envp);
  size_t len;

  if (uri == NULL || *uri == '\0')
    uri = FCGX_GetParam ("DOCUMENT_URI", req->envp);
  if (uri == NULL || *uri == '\0')
    return xstrdup ("/");
  len = strcspn (uri, "?#");
  return xstrndup (uri, len);
}

/* Answer one request; *rep is what the executor is told of it.  */
static void
serve_one (struct app *app, FCGX_Request *req, struct boxer_proto_report *rep)
{
  const char *method = FCGX_GetParam ("REQUEST_METHOD", req->envp);
  struct boxer_http http = {
    .fcgi = req,
    .method = method ? method : "GET",
    .content_type = FCGX_GetParam ("CONTENT_TYPE", req->envp),
    .query = FCGX_GetParam ("QUERY_STRING", req->envp),
    .status = 500,
    .pull_ms = -1,
  };
  long long t0 = boxer_now_ms ();

  if (boxer_random_id (http.request_id, "q_", 16, NULL) < 0)
    strcpy (http.request_id, "q_unknown");
  boxer_log_set_request_id (http.request_id);
  http.path = request_path (req);
  if (http.query == NULL)
    http.query = "";
  boxer_router_dispatch (&app->srv, &http);
  boxer_log_info ("%s %s %d %lld ms", http.method, http.path, http.status,
                  boxer_now_ms () - t0);
  *rep = (struct boxer_proto_report) {
    .status = http.status,
    /* Codes are static strings of the status table.  */
    .run_error = strcmp (http.path, "/run") == 0 && strcmp (http.method, "POST") == 0
                   ? http.error_code : NULL,
    .pull_ms = http.pull_ms,
    .pulled_bytes = http.pulled_bytes,
  };
  free (http.path);
  boxer_log_set_request_id (NULL);
}

static int
worker_main (void *data)
{
  struct app *app = data;
  cleanup_error struct boxer_error *err = NULL;
  struct sigaction sa = { .sa_handler = on_worker_stop };
  FCGX_Request req;

  /* No SA_RESTART, and FCGI_FAIL_ACCEPT_ON_INTR: a stop signal ends the
     wait in accept (), while a run in progress finishes first.  */
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);

  if (FCGX_InitRequest (&req, app->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
    {
      boxer_log_error ("cannot initialise the FastCGI request");
      return 1;
    }
  while (!worker_stop)
    {
      int r = FCGX_Accept_r (&req);
      if (r < 0)
        {
          if (!worker_stop)
            boxer_log_error ("accept: %s", r < -1 ? strerror (-r) : "failed");
          break;
        }
      struct boxer_proto_report rep;
      serve_one (app, &req, &rep);
      FCGX_Finish_r (&req);
      /* GET /metrics asks the executor, which is told here, after the
         answer is out, without waiting.  */
      boxer_exec_report (&app->cfg, &rep);
      /* After the answer is out, so no client waits for it.  */
      boxer_cache_tidy (app->srv.cache);
      boxer_files_housekeeping (&app->srv);
    }
  FCGX_Free (&req, 1);
  return worker_stop ? 0 : 1;
}

static void
after_stop (void *data)
{
  /* Nothing of a run is the workers' to clean up: the executor owns it.  */
  (void) data;
}

static bool
fd_is_socket (int fd)
{
  struct stat st;
  return fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode);
}

int
main (int argc, char **argv)
{
  static const struct option options[] = {
    { "config", required_argument, NULL, 'c' },
    { "workers", required_argument, NULL, 'w' },
    { "socket", required_argument, NULL, 's' },
    { "hash-key", no_argument, NULL, 'k' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  cleanup_error struct boxer_error *err = NULL;
  cleanup_free char *source = NULL;
  const char *config_path = NULL, *socket_path = NULL;
  struct app app = { .listen_fd = 0 };
  int workers = 4, opt, ret = 1;

  while ((opt = getopt_long (argc, argv, "c:w:s:h", options, NULL)) != -1)
    switch (opt)
      {
      case 'c':
        config_path = optarg;
        break;
      case 'w':
        workers = atoi (optarg);
        if (workers < 0 || workers > 256)
          {
            fprintf (stderr, PROGRAM ": --workers must be between 0 and 256\n");
            return 2;
          }
        break;
      case 's':
        socket_path = optarg;
        break;
      case 'k':
        return hash_key ();
      case 'h':
        usage (stdout);
        return 0;
      default:
        usage (stderr);
        return 2;
      }

  boxer_log_init (PROGRAM, BOXER_LOG_INFO);
  signal (SIGPIPE, SIG_IGN);

  if (boxer_config_load (&app.cfg, config_path, &source, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      return 1;
    }
  boxer_log_info ("config from %s; home %s", source, app.cfg.home);
  if (app.cfg.n_api_keys == 0 && !listen_addr_is_loopback (app.cfg.listen_addr))
    boxer_log_warning ("listen_addr is %s and no api_keys are configured: anyone who reaches "
                       "the port can run code and use the server's registry credentials; add "
                       "api_keys (see README, \"API keys\")",
                       app.cfg.listen_addr);
  else if (app.cfg.n_api_keys > 0)
    boxer_log_info ("%zu API keys; every request but GET /health needs one",
                    app.cfg.n_api_keys);

  if (FCGX_Init () != 0)
    {
      fprintf (stderr, PROGRAM ": cannot initialise libfcgi\n");
      goto out;
    }
  if (socket_path)
    {
      app.listen_fd = FCGX_OpenSocket (socket_path, 128);
      if (app.listen_fd < 0)
        {
          fprintf (stderr, PROGRAM ": cannot listen on '%s'\n", socket_path);
          goto out;
        }
    }
  else if (!fd_is_socket (0))
    {
      fprintf (stderr, PROGRAM ": fd 0 is not a socket; start it with spawn-fcgi "
                       "(see contrib/pool.sh) or pass --socket PATH\n");
      goto out;
    }

  /* Started as root (spawn-fcgi, a shell): the worker user from here on,
     before anything from a client, registry or sandbox is read.  */
  if (app.cfg.worker_user ? boxer_layout_drop_to_worker (&app.cfg, &err) < 0
                          : boxer_ensure_private_dir (app.cfg.home, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      goto out;
    }
  if (boxer_cache_open (&app.srv.cache, app.cfg.home, &err) < 0
      || boxer_cache_configure (app.srv.cache, &app.cfg, &err) < 0)
    {
      fprintf (stderr, PROGRAM ": %s\n", err->msg);
      goto out;
    }
  app.srv.cfg = &app.cfg;

  if (workers == 0)
    {
      ret = worker_main (&app);
      after_stop (&app);
    }
  else
    /* Workers finish the run they have, which may take up to the longest
       wall clock a request may ask for.  */
    ret = boxer_pool_run (workers, worker_main, after_stop, &app,
                          (int) app.cfg.max_limits.wall_clock_secs + 10);

out:
  boxer_cache_free (app.srv.cache);
  boxer_config_release (&app.cfg);
  return ret;
}
