#include <config.h>

#include "capture.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum
{
  SLOT_PID,
  SLOT_OUT,
  SLOT_ERR,
  SLOT_IN,
  SLOT_CANCEL,
  SLOT_COUNT
};

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* Read what is available of stream (0: stdout, 1: stderr); returns false
   at EOF or on error.  *gone: the streamed output's reader went away.  */
static bool
drain (struct boxer_capture *cap, int stream, bool *gone)
{
  int fd = stream ? cap->stderr_fd : cap->stdout_fd;
  struct boxer_buf *buf = stream ? &cap->err : &cap->out;
  char chunk[65536];

  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);
      if (n > 0)
        {
          size_t kept = boxer_buf_append_capped (buf, chunk, n);
          if (kept > 0 && cap->on_output && !*gone
              && cap->on_output (cap->output_data, -1, stream, chunk, kept) < 0)
            *gone = true;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return true;
      return false;
    }
}

int
boxer_capture_run (struct boxer_capture *cap, struct boxer_error **err)
{
  cleanup_close int pidfd = (int) syscall (SYS_pidfd_open, cap->pid, 0);
  size_t stdin_off = 0;
  bool exited = false;
  long long next_kill = cap->deadline_ms;
  int kill_attempt = 0;

  if (pidfd < 0)
    return boxer_error_errno (err, errno, "pidfd_open");
  {
    int fds[] = { cap->stdin_fd, cap->stdout_fd, cap->stderr_fd };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
      if (fds[i] >= 0 && fcntl (fds[i], F_SETFL, fcntl (fds[i], F_GETFL) | O_NONBLOCK) < 0)
        return boxer_error_errno (err, errno, "make pipe non-blocking");
  }
  if (cap->stdin_fd >= 0 && cap->stdin_len == 0)
    close_fd (&cap->stdin_fd);

  while (!exited || cap->stdout_fd >= 0 || cap->stderr_fd >= 0)
    {
      struct pollfd pfd[SLOT_COUNT] = {
        [SLOT_PID] = { .fd = exited ? -1 : pidfd, .events = POLLIN },
        [SLOT_OUT] = { .fd = cap->stdout_fd, .events = POLLIN },
        [SLOT_ERR] = { .fd = cap->stderr_fd, .events = POLLIN },
        [SLOT_IN] = { .fd = cap->stdin_fd, .events = POLLOUT },
        [SLOT_CANCEL] = { .fd = exited || cap->cancelled ? -1 : cap->cancel_fd,
                          .events = POLLIN },
      };
      long long now = boxer_now_ms ();
      int timeout;

      if (!exited && now >= next_kill)
        {
          /* The program's time is up (or nobody waits for it any more):
             kill, then kill harder every second until runsc run is gone.  */
          if (!cap->cancelled)
            cap->timed_out = true;
          cap->kill_cb (cap->kill_data, kill_attempt++);
          next_kill = boxer_now_ms () + 1000;
          continue;
        }
      timeout = exited ? 1000 : (int) (next_kill - now);
      if (poll (pfd, SLOT_COUNT, timeout) < 0)
        {
          if (errno == EINTR)
            continue;
          return boxer_error_errno (err, errno, "poll");
        }

      /* The worker sends nothing once the run began: readable means it
         closed its end, its client gone.  */
      if (pfd[SLOT_CANCEL].revents)
        {
          cap->cancelled = true;
          next_kill = boxer_now_ms ();
        }
      if (pfd[SLOT_IN].revents & (POLLOUT | POLLERR | POLLHUP))
        {
          ssize_t n = write (cap->stdin_fd, cap->stdin_data + stdin_off, cap->stdin_len - stdin_off);
          if (n > 0)
            stdin_off += n;
          /* EPIPE: the program closed stdin without reading it all, which
             is its right.  */
          if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == cap->stdin_len)
            close_fd (&cap->stdin_fd);
        }
      {
        bool gone = false;
        if (pfd[SLOT_OUT].revents && !drain (cap, 0, &gone))
          close_fd (&cap->stdout_fd);
        if (pfd[SLOT_ERR].revents && !drain (cap, 1, &gone))
          close_fd (&cap->stderr_fd);
        if (gone && !cap->cancelled)
          {
            /* Nobody reads the output any more: as if the worker went.  */
            cap->on_output = NULL;
            cap->cancelled = true;
            next_kill = boxer_now_ms ();
          }
      }

      if (pfd[SLOT_PID].revents & POLLIN)
        {
          exited = true;
          close_fd (&cap->stdin_fd);
          /* Nothing else holds the pipes once runsc run is gone (the
             sandbox dies with its container), so EOF follows at once; the
             poll timeout above bounds the wait if it somehow does not.  */
        }
      else if (exited && pfd[SLOT_OUT].revents == 0 && pfd[SLOT_ERR].revents == 0)
        {
          /* A second passed after exit without output or EOF: something
             outside still holds a pipe.  Stop waiting for it.  */
          close_fd (&cap->stdout_fd);
          close_fd (&cap->stderr_fd);
        }
    }
  close_fd (&cap->stdin_fd);

  while (waitpid (cap->pid, &cap->status, 0) < 0)
    if (errno != EINTR)
      return boxer_error_errno (err, errno, "waitpid");
  return 0;
}
