/* Supervising one attached `runsc run`: feed stdin, collect stdout and
   stderr concurrently (each capped, the rest drained and dropped so the
   program never blocks on a full pipe), enforce the wall clock, and reap
   the process.  */
#ifndef BOXER_EXECUTOR_CAPTURE_H
#define BOXER_EXECUTOR_CAPTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/buf.h"

struct boxer_capture
{
  pid_t pid;
  int stdin_fd;               /* write end, or -1; closed by the capture */
  const char *stdin_data;
  size_t stdin_len;
  int stdout_fd;              /* read ends; closed by the capture */
  int stderr_fd;
  long long deadline_ms;      /* boxer_now_ms () clock */

  /* Called when the deadline passes (attempt 0) and again every second
     while the process is still alive (attempt 1, 2, ...), to kill the
     sandbox harder each time.  */
  void (*kill_cb) (void *data, int attempt);
  void *kill_data;
  /* Readable or hung up: kill the sandbox as at the deadline, and report
     cancelled instead of timed_out; -1: none.  */
  int cancel_fd;
  /* NULL, or called with each piece of output the results keep (stream 0:
     stdout, 1: stderr) as it is read; -1 from it cancels the run as
     cancel_fd does.  */
  int (*on_output) (void *data, long index, int stream, const char *bytes, size_t len);
  void *output_data;
  /* Results.  */
  struct boxer_buf out;       /* boxer_buf_init () them with the cap first */
  struct boxer_buf err;
  bool timed_out;
  bool cancelled;
  int status;                 /* waitpid () status */
};

int boxer_capture_run (struct boxer_capture *cap, struct boxer_error **err);

#endif
