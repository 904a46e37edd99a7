#include <config.h>

#include "init_proto.h"

#include <stdlib.h>
#include <string.h>

static void
put (struct boxer_init_writer *w, const void *p, size_t n)
{
  if (w->failed)
    return;
  if (n > BOXER_INIT_FRAME_MAX + 4 - w->len)
    {
      w->failed = true;
      return;
    }
  if (w->len + n > w->alloc)
    {
      size_t want = w->alloc ? w->alloc : 256;
      unsigned char *more;
      while (want < w->len + n)
        want *= 2;
      more = realloc (w->data, want);
      if (more == NULL)
        {
          w->failed = true;
          return;
        }
      w->data = more;
      w->alloc = want;
    }
  memcpy (w->data + w->len, p, n);
  w->len += n;
}

static void
be32 (unsigned char out[4], uint32_t v)
{
  out[0] = (unsigned char) (v >> 24);
  out[1] = (unsigned char) (v >> 16);
  out[2] = (unsigned char) (v >> 8);
  out[3] = (unsigned char) v;
}

void
boxer_init_frame_start (struct boxer_init_writer *w, uint8_t type, uint32_t id)
{
  unsigned char head[9] = { 0 };

  w->len = 0;
  w->failed = false;
  /* The length is written by boxer_init_frame_finish ().  */
  head[4] = type;
  be32 (head + 5, id);
  put (w, head, sizeof head);
}

void
boxer_init_put_u32 (struct boxer_init_writer *w, uint32_t v)
{
  unsigned char b[4];
  be32 (b, v);
  put (w, b, sizeof b);
}

void
boxer_init_put_u64 (struct boxer_init_writer *w, uint64_t v)
{
  boxer_init_put_u32 (w, (uint32_t) (v >> 32));
  boxer_init_put_u32 (w, (uint32_t) v);
}

void
boxer_init_put_bytes (struct boxer_init_writer *w, const void *p, size_t n)
{
  put (w, p, n);
}

void
boxer_init_put_str (struct boxer_init_writer *w, const char *s, size_t n)
{
  if (n > UINT32_MAX)
    {
      w->failed = true;
      return;
    }
  boxer_init_put_u32 (w, (uint32_t) n);
  put (w, s, n);
}

int
boxer_init_frame_finish (struct boxer_init_writer *w)
{
  if (w->failed || w->len < 9 || w->len - 4 > BOXER_INIT_FRAME_MAX)
    {
      boxer_init_writer_release (w);
      return -1;
    }
  be32 (w->data, (uint32_t) (w->len - 4));
  return 0;
}

void
boxer_init_writer_release (struct boxer_init_writer *w)
{
  free (w->data);
  w->data = NULL;
  w->len = w->alloc = 0;
}

void
boxer_init_reader_init (struct boxer_init_reader *r, const void *payload, size_t len)
{
  r->p = payload;
  r->left = len;
  r->failed = false;
}

static bool
take (struct boxer_init_reader *r, void *out, size_t n)
{
  if (r->failed || r->left < n)
    {
      r->failed = true;
      return false;
    }
  memcpy (out, r->p, n);
  r->p += n;
  r->left -= n;
  return true;
}

bool
boxer_init_get_u32 (struct boxer_init_reader *r, uint32_t *v)
{
  unsigned char b[4];

  if (!take (r, b, sizeof b))
    return false;
  *v = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
  return true;
}

bool
boxer_init_get_u64 (struct boxer_init_reader *r, uint64_t *v)
{
  uint32_t hi, lo;

  if (!boxer_init_get_u32 (r, &hi) || !boxer_init_get_u32 (r, &lo))
    return false;
  *v = (uint64_t) hi << 32 | lo;
  return true;
}

bool
boxer_init_get_str (struct boxer_init_reader *r, size_t max, char **s)
{
  uint32_t n;

  *s = NULL;
  if (!boxer_init_get_u32 (r, &n))
    return false;
  if (n > max || n > r->left || memchr (r->p, '\0', n) != NULL)
    {
      r->failed = true;
      return false;
    }
  *s = malloc ((size_t) n + 1);
  if (*s == NULL)
    {
      r->failed = true;
      return false;
    }
  memcpy (*s, r->p, n);
  (*s)[n] = '\0';
  r->p += n;
  r->left -= n;
  return true;
}

bool
boxer_init_reader_done (const struct boxer_init_reader *r)
{
  return !r->failed && r->left == 0;
}

static void
free_strv (char **v)
{
  if (v == NULL)
    return;
  for (size_t i = 0; v[i]; i++)
    free (v[i]);
  free (v);
}

/* A u32 count, then that many strings; each at most max bytes, all of them
   within the frame (which bounds their total).  */
static bool
get_strv (struct boxer_init_reader *r, size_t max, bool need_one, char ***out)
{
  uint32_t n;
  char **v;

  *out = NULL;
  if (!boxer_init_get_u32 (r, &n))
    return false;
  /* Each string takes 4 bytes at least: a count beyond what is left lies.  */
  if (n > BOXER_INIT_MAX_ARGS || n > r->left / 4 || (need_one && n == 0))
    {
      r->failed = true;
      return false;
    }
  v = calloc ((size_t) n + 1, sizeof *v);
  if (v == NULL)
    {
      r->failed = true;
      return false;
    }
  for (uint32_t i = 0; i < n; i++)
    if (!boxer_init_get_str (r, max, &v[i]))
      {
        free_strv (v);
        return false;
      }
  *out = v;
  return true;
}

bool
boxer_init_decode_start (const void *payload, size_t len, struct boxer_init_start *out)
{
  struct boxer_init_reader r;

  memset (out, 0, sizeof *out);
  boxer_init_reader_init (&r, payload, len);
  if (!boxer_init_get_u32 (&r, &out->uid) || !boxer_init_get_u32 (&r, &out->gid)
      || !boxer_init_get_u32 (&r, &out->flags) || (out->flags & ~BOXER_INIT_START_FLAGS)
      || !boxer_init_get_u64 (&r, &out->nproc) || !boxer_init_get_u64 (&r, &out->nofile)
      || !boxer_init_get_u64 (&r, &out->as_bytes) || !boxer_init_get_u64 (&r, &out->wall_ms)
      || !boxer_init_get_u64 (&r, &out->stdout_cap) || !boxer_init_get_u64 (&r, &out->stderr_cap)
      || !boxer_init_get_str (&r, BOXER_INIT_PATH_MAX, &out->cwd)
      || !get_strv (&r, BOXER_INIT_FRAME_MAX, true, &out->argv)
      || !get_strv (&r, BOXER_INIT_FRAME_MAX, false, &out->env) || !boxer_init_reader_done (&r)
      || out->cwd[0] != '/' || out->argv[0][0] == '\0'
      /* Killing every process of uid 0 would be the whole sandbox.  */
      || ((out->flags & BOXER_INIT_START_KILL_UID) && out->uid == 0))
    {
      boxer_init_start_release (out);
      return false;
    }
  return true;
}

void
boxer_init_start_release (struct boxer_init_start *s)
{
  free (s->cwd);
  free_strv (s->argv);
  free_strv (s->env);
  memset (s, 0, sizeof *s);
}

bool
boxer_init_path_is_valid (const char *path)
{
  size_t len = strlen (path);

  if (len < 2 || len > BOXER_INIT_PATH_MAX || path[0] != '/' || path[len - 1] == '/')
    return false;
  for (const char *c = path; *c;)
    {
      size_t n;
      c++;      /* the '/' */
      n = strcspn (c, "/");
      if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
        return false;
      c += n;
    }
  return true;
}
