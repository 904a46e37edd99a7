#include <config.h>

#include "pool.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* A worker that dies sooner than this after starting counts as crashing;
   the master then waits before the next restart rather than spinning.  */
#define CRASH_WINDOW_MS 2000
#define CRASH_BACKOFF_MS 1000

static volatile sig_atomic_t stop_requested;

static void
on_stop (int sig)
{
  stop_requested = sig;
}

struct slot
{
  pid_t pid;
  long long started_ms;
  long long restart_at_ms;
};

static pid_t
start_worker (int (*worker_main) (void *), void *data)
{
  pid_t pid = fork ();

  if (pid < 0)
    {
      boxer_log_error ("fork worker: %s", strerror (errno));
      return -1;
    }
  if (pid == 0)
    {
      struct sigaction sa = { .sa_handler = SIG_DFL };
      sigaction (SIGCHLD, &sa, NULL);
      /* exit (), not _exit (): LeakSanitizer checks a worker as it ends.  */
      exit (worker_main (data));
    }
  return pid;
}

int
boxer_pool_run (int n, int (*worker_main) (void *), void (*after_stop) (void *), void *data,
                int stop_grace_secs)
{
  struct slot *slots = xmalloc0 (n * sizeof *slots);
  struct sigaction sa = { .sa_handler = on_stop };
  long long stop_deadline;
  int alive;

  /* No SA_RESTART: the stop signal must interrupt the master's wait.  */
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);

  for (int i = 0; i < n; i++)
    {
      slots[i].pid = start_worker (worker_main, data);
      slots[i].started_ms = boxer_now_ms ();
    }
  boxer_log_info ("pool of %d workers started", n);

  while (!stop_requested)
    {
      int status;
      long long now = boxer_now_ms ();
      bool waiting = false;
      pid_t pid;

      for (int i = 0; i < n; i++)
        if (slots[i].pid <= 0 && now >= slots[i].restart_at_ms)
          {
            slots[i].pid = start_worker (worker_main, data);
            slots[i].started_ms = now;
          }
        else if (slots[i].pid <= 0)
          waiting = true;

      /* A slot waiting out its backoff must not wait for another worker to
         die as well: poll until its time comes.  */
      pid = waitpid (-1, &status, waiting ? WNOHANG : 0);
      if (pid == 0)
        {
          nanosleep (&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
          continue;
        }
      if (pid < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == ECHILD)
            {
              /* Every slot waits for its backoff.  */
              nanosleep (&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
              continue;
            }
          boxer_log_error ("waitpid: %s", strerror (errno));
          break;
        }
      for (int i = 0; i < n; i++)
        {
          if (slots[i].pid != pid)
            continue;
          now = boxer_now_ms ();
          if (WIFSIGNALED (status))
            boxer_log_warning ("worker %d killed by signal %d; restarting", (int) pid,
                               WTERMSIG (status));
          else
            boxer_log_warning ("worker %d exited with %d; restarting", (int) pid,
                               WEXITSTATUS (status));
          slots[i].pid = 0;
          slots[i].restart_at_ms
            = now - slots[i].started_ms < CRASH_WINDOW_MS ? now + CRASH_BACKOFF_MS : now;
        }
    }

  boxer_log_info ("stopping: signal %d", (int) stop_requested);
  for (int i = 0; i < n; i++)
    if (slots[i].pid > 0)
      kill (slots[i].pid, SIGTERM);

  stop_deadline = boxer_now_ms () + stop_grace_secs * 1000LL;
  do
    {
      pid_t pid;
      alive = 0;
      for (int i = 0; i < n; i++)
        {
          if (slots[i].pid <= 0)
            continue;
          pid = waitpid (slots[i].pid, NULL, WNOHANG);
          if (pid == slots[i].pid || (pid < 0 && errno == ECHILD))
            slots[i].pid = 0;
          else
            alive++;
        }
      if (alive && boxer_now_ms () >= stop_deadline)
        {
          boxer_log_warning ("%d workers still busy after %d s; killing them", alive,
                             stop_grace_secs);
          for (int i = 0; i < n; i++)
            if (slots[i].pid > 0)
              kill (slots[i].pid, SIGKILL);
          stop_deadline = boxer_now_ms () + 5000;
        }
      if (alive)
        nanosleep (&(struct timespec) { .tv_nsec = 50 * 1000 * 1000 }, NULL);
    }
  while (alive);

  free (slots);
  if (after_stop)
    after_stop (data);
  boxer_log_info ("stopped");
  return 0;
}
