#include <config.h>

#include "init_link.h"

#include <fcntl.h>
#include <poll.h>

#include "common/util.h"

void
boxer_init_link_init (struct boxer_init_link *l, int to_fd, int from_fd)
{
  memset (l, 0, sizeof *l);
  l->to_fd = to_fd;
  l->from_fd = from_fd;
  fcntl (to_fd, F_SETFL, fcntl (to_fd, F_GETFL) | O_NONBLOCK);
  fcntl (from_fd, F_SETFL, fcntl (from_fd, F_GETFL) | O_NONBLOCK);
  l->in = xmalloc (BOXER_INIT_FRAME_MAX + 4);
}

void
boxer_init_link_release (struct boxer_init_link *l)
{
  if (l->to_fd >= 0)
    close (l->to_fd);
  if (l->from_fd >= 0)
    close (l->from_fd);
  free (l->out);
  free (l->in);
  memset (l, 0, sizeof *l);
  l->to_fd = l->from_fd = -1;
}

int
boxer_init_link_queue (struct boxer_init_link *l, struct boxer_init_writer *w,
                       struct boxer_error **err)
{
  if (boxer_init_frame_finish (w) < 0)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "a frame for boxer-init is too large");
  /* Drop what was written before growing.  */
  if (l->out_off > 0)
    {
      memmove (l->out, l->out + l->out_off, l->out_len - l->out_off);
      l->out_len -= l->out_off;
      l->out_off = 0;
    }
  if (l->out_len + w->len > l->out_alloc)
    {
      l->out_alloc = (l->out_len + w->len) * 2;
      l->out = xrealloc (l->out, l->out_alloc);
    }
  memcpy (l->out + l->out_len, w->data, w->len);
  l->out_len += w->len;
  boxer_init_writer_release (w);
  return 0;
}

/* A whole frame at the front of the input: 1 with *ev, 0 when more is
   needed, -1 on a length no frame has.  */
int
boxer_init_link_queue_start (struct boxer_init_link *l, uint32_t id,
                             const struct boxer_init_start *s, const char *stdin_data,
                             size_t stdin_len, struct boxer_error **err)
{
  struct boxer_init_writer w = { 0 };
  size_t n;

  boxer_init_frame_start (&w, BOXER_INIT_START, id);
  boxer_init_put_u32 (&w, s->uid);
  boxer_init_put_u32 (&w, s->gid);
  boxer_init_put_u32 (&w, s->flags);
  boxer_init_put_u64 (&w, s->nproc);
  boxer_init_put_u64 (&w, s->nofile);
  boxer_init_put_u64 (&w, s->as_bytes);
  boxer_init_put_u64 (&w, s->wall_ms);
  boxer_init_put_u64 (&w, s->stdout_cap);
  boxer_init_put_u64 (&w, s->stderr_cap);
  boxer_init_put_str (&w, s->cwd, strlen (s->cwd));
  for (n = 0; s->argv[n]; n++)
    ;
  boxer_init_put_u32 (&w, (uint32_t) n);
  for (size_t i = 0; i < n; i++)
    boxer_init_put_str (&w, s->argv[i], strlen (s->argv[i]));
  for (n = 0; s->env[n]; n++)
    ;
  boxer_init_put_u32 (&w, (uint32_t) n);
  for (size_t i = 0; i < n; i++)
    boxer_init_put_str (&w, s->env[i], strlen (s->env[i]));
  if (boxer_init_link_queue (l, &w, err) < 0)
    return -1;

  for (size_t off = 0; off < stdin_len; off += BOXER_INIT_CHUNK)
    {
      size_t len = stdin_len - off < BOXER_INIT_CHUNK ? stdin_len - off : BOXER_INIT_CHUNK;
      boxer_init_frame_start (&w, BOXER_INIT_STDIN, id);
      boxer_init_put_bytes (&w, stdin_data + off, len);
      if (boxer_init_link_queue (l, &w, err) < 0)
        return -1;
    }
  boxer_init_frame_start (&w, BOXER_INIT_STDIN, id);
  return boxer_init_link_queue (l, &w, err);
}

int
boxer_init_link_queue_file (struct boxer_init_link *l, uint32_t id, int fd, const char *dest,
                            struct boxer_error **err)
{
  struct boxer_init_writer w = { 0 };
  cleanup_free unsigned char *chunk = xmalloc (BOXER_INIT_CHUNK);

  boxer_init_frame_start (&w, BOXER_INIT_FILE_OPEN, id);
  boxer_init_put_u32 (&w, 0);
  boxer_init_put_u32 (&w, 0);
  boxer_init_put_u32 (&w, 0444);
  boxer_init_put_str (&w, dest, strlen (dest));
  if (boxer_init_link_queue (l, &w, err) < 0)
    return -1;
  for (;;)
    {
      ssize_t n = read (fd, chunk, BOXER_INIT_CHUNK);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return boxer_error_errno (err, errno, "read an upload for '%s'", dest);
      if (n == 0)
        break;
      boxer_init_frame_start (&w, BOXER_INIT_FILE_DATA, id);
      boxer_init_put_bytes (&w, chunk, (size_t) n);
      if (boxer_init_link_queue (l, &w, err) < 0)
        return -1;
    }
  boxer_init_frame_start (&w, BOXER_INIT_FILE_CLOSE, id);
  return boxer_init_link_queue (l, &w, err);
}

static int
take_frame (struct boxer_init_link *l, struct boxer_init_event *ev, struct boxer_error **err)
{
  const unsigned char *f;
  uint32_t flen;

  /* The last event's bytes go first.  */
  if (l->in_taken > 0)
    {
      memmove (l->in, l->in + l->in_taken, l->in_len - l->in_taken);
      l->in_len -= l->in_taken;
      l->in_taken = 0;
    }
  if (l->in_len < 4)
    return 0;
  f = l->in;
  flen = (uint32_t) f[0] << 24 | (uint32_t) f[1] << 16 | (uint32_t) f[2] << 8 | f[3];
  if (flen < 5 || flen > BOXER_INIT_FRAME_MAX)
    return boxer_error_make (err, BOXER_ERR_INTERNAL, "boxer-init sent a frame of %u bytes", flen);
  if (l->in_len - 4 < flen)
    return 0;
  ev->type = f[4];
  ev->id = (uint32_t) f[5] << 24 | (uint32_t) f[6] << 16 | (uint32_t) f[7] << 8 | f[8];
  ev->payload = f + 9;
  ev->len = flen - 5;
  l->in_taken = 4 + (size_t) flen;
  return 1;
}

int
boxer_init_link_next (struct boxer_init_link *l, long long deadline_ms, int cancel_fd,
                      bool *cancelled, struct boxer_init_event *ev, struct boxer_error **err)
{
  *cancelled = false;
  for (;;)
    {
      struct pollfd p[3];
      nfds_t n = 0;
      long long left;
      int r = take_frame (l, ev, err);

      if (r != 0)
        return r;
      left = deadline_ms - boxer_now_ms ();
      if (left <= 0)
        return 0;
      p[n++] = (struct pollfd) { .fd = l->from_fd, .events = POLLIN };
      p[n++] = (struct pollfd) { .fd = l->out_off < l->out_len ? l->to_fd : -1,
                                 .events = POLLOUT };
      if (cancel_fd >= 0)
        p[n++] = (struct pollfd) { .fd = cancel_fd, .events = POLLIN };
      if (poll (p, n, left > 60000 ? 60000 : (int) left) < 0)
        {
          if (errno == EINTR)
            continue;
          return boxer_error_errno (err, errno, "poll boxer-init");
        }
      if (n == 3 && p[2].revents)
        {
          *cancelled = true;
          return 0;
        }
      if (p[1].revents & (POLLERR | POLLHUP))
        return boxer_error_make (err, BOXER_ERR_RUNTIME, "closed: boxer-init is gone");
      if (p[1].revents & POLLOUT)
        {
          ssize_t w = write (l->to_fd, l->out + l->out_off, l->out_len - l->out_off);
          if (w < 0 && errno != EAGAIN && errno != EINTR)
            return boxer_error_make (err, BOXER_ERR_RUNTIME, "closed: boxer-init is gone");
          if (w > 0)
            l->out_off += (size_t) w;
        }
      if (p[0].revents)
        {
          ssize_t got = read (l->from_fd, l->in + l->in_len, BOXER_INIT_FRAME_MAX + 4 - l->in_len);
          if (got == 0)
            return boxer_error_make (err, BOXER_ERR_RUNTIME, "closed: boxer-init is gone");
          if (got < 0 && errno != EAGAIN && errno != EINTR)
            return boxer_error_errno (err, errno, "read from boxer-init");
          if (got > 0)
            l->in_len += (size_t) got;
        }
    }
}

int
boxer_init_link_queue_data (struct boxer_init_link *l, uint32_t id, uint32_t uid, uint32_t gid,
                            uint32_t mode, const char *data, size_t len, const char *dest,
                            struct boxer_error **err)
{
  struct boxer_init_writer w = { 0 };

  boxer_init_frame_start (&w, BOXER_INIT_FILE_OPEN, id);
  boxer_init_put_u32 (&w, uid);
  boxer_init_put_u32 (&w, gid);
  boxer_init_put_u32 (&w, mode);
  boxer_init_put_str (&w, dest, strlen (dest));
  if (boxer_init_link_queue (l, &w, err) < 0)
    return -1;
  for (size_t off = 0; off < len; off += BOXER_INIT_CHUNK)
    {
      boxer_init_frame_start (&w, BOXER_INIT_FILE_DATA, id);
      boxer_init_put_bytes (&w, data + off, len - off < BOXER_INIT_CHUNK ? len - off
                                                                           : BOXER_INIT_CHUNK);
      if (boxer_init_link_queue (l, &w, err) < 0)
        return -1;
    }
  boxer_init_frame_start (&w, BOXER_INIT_FILE_CLOSE, id);
  return boxer_init_link_queue (l, &w, err);
}

char *
boxer_init_event_message (const struct boxer_init_event *ev)
{
  struct boxer_init_reader rd;
  char *msg = NULL;

  boxer_init_reader_init (&rd, ev->payload, ev->len);
  if (!boxer_init_get_str (&rd, 1024, &msg))
    msg = xstrdup ("refused");
  return msg;
}
