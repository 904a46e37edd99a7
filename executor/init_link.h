/* The executor's end of the boxer-init protocol (init_proto.h): frames
   queued for boxer-init's stdin and written as it takes them, events read
   from its stdout, both on non-blocking pipes in one poll () loop, so that
   neither side ever waits on the other with a full pipe.  */
#ifndef BOXER_EXECUTOR_INIT_LINK_H
#define BOXER_EXECUTOR_INIT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "init_proto.h"

struct boxer_init_link
{
  int to_fd;                    /* boxer-init's stdin */
  int from_fd;                  /* its stdout */
  unsigned char *out;           /* queued frames not yet written */
  size_t out_len, out_off, out_alloc;
  unsigned char *in;            /* bytes read, the frame being assembled first */
  size_t in_len, in_taken;
};

/* One event from boxer-init; payload points into the link until the next
   call.  */
struct boxer_init_event
{
  uint8_t type;
  uint32_t id;
  const unsigned char *payload;
  size_t len;
};

/* Takes the two descriptors (closed by the release).  */
void boxer_init_link_init (struct boxer_init_link *l, int to_fd, int from_fd);
void boxer_init_link_release (struct boxer_init_link *l);

/* Queue a frame built with boxer_init_frame_start () .. _finish (); the
   writer is released.  -1 when it failed (too large).  */
int boxer_init_link_queue (struct boxer_init_link *l, struct boxer_init_writer *w,
                           struct boxer_error **err);

/* Queue a START of id built from s (argv and env NULL-terminated), then
   stdin in chunks and its end.  */
int boxer_init_link_queue_start (struct boxer_init_link *l, uint32_t id,
                                 const struct boxer_init_start *s, const char *stdin_data,
                                 size_t stdin_len, struct boxer_error **err);
/* Queue a whole file from fd as FILE_OPEN (root's, read-only: 0444),
   FILE_DATA and FILE_CLOSE of id; boxer-init answers FILE_DONE or ERROR
   later.  */
int boxer_init_link_queue_file (struct boxer_init_link *l, uint32_t id, int fd,
                                const char *dest, struct boxer_error **err);

/* The same from len bytes of data, as uid's and gid's with mode (a
   session's file).  */
int boxer_init_link_queue_data (struct boxer_init_link *l, uint32_t id, uint32_t uid, uint32_t gid,
                                uint32_t mode, const char *data, size_t len, const char *dest,
                                struct boxer_error **err);

/* The message of an ERROR event (caller frees); "refused" when it has
   none that reads.  */
char *boxer_init_event_message (const struct boxer_init_event *ev);

/* Write what is queued and wait for the next event until deadline_ms
   (monotonic, boxer_now_ms ()).  Returns 1 with *ev, 0 at the deadline or
   when cancel_fd (-1: none) became readable or hung up (*cancelled then),
   -1 when boxer-init is gone (BOXER_ERR_RUNTIME, "closed") or broke the
   protocol (BOXER_ERR_INTERNAL).  */
int boxer_init_link_next (struct boxer_init_link *l, long long deadline_ms, int cancel_fd,
                          bool *cancelled, struct boxer_init_event *ev, struct boxer_error **err);

#endif
