/* libFuzzer target: what boxer-init decodes of the executor's commands
   (executor/init_proto.c): a START payload, the readers, paths.  A START
   that decodes must re-encode to the same bytes.
   fuzz-sources: executor/init_proto.c  */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/init_proto.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
encode_start (const struct boxer_init_start *s, struct boxer_init_writer *w)
{
  uint32_t argc = 0, envc = 0;

  while (s->argv[argc])
    argc++;
  while (s->env[envc])
    envc++;
  boxer_init_frame_start (w, BOXER_INIT_START, 0);
  boxer_init_put_u32 (w, s->uid);
  boxer_init_put_u32 (w, s->gid);
  boxer_init_put_u32 (w, s->flags);
  boxer_init_put_u64 (w, s->nproc);
  boxer_init_put_u64 (w, s->nofile);
  boxer_init_put_u64 (w, s->as_bytes);
  boxer_init_put_u64 (w, s->wall_ms);
  boxer_init_put_u64 (w, s->stdout_cap);
  boxer_init_put_u64 (w, s->stderr_cap);
  boxer_init_put_str (w, s->cwd, strlen (s->cwd));
  boxer_init_put_u32 (w, argc);
  for (uint32_t i = 0; i < argc; i++)
    boxer_init_put_str (w, s->argv[i], strlen (s->argv[i]));
  boxer_init_put_u32 (w, envc);
  for (uint32_t i = 0; i < envc; i++)
    boxer_init_put_str (w, s->env[i], strlen (s->env[i]));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct boxer_init_start s;
  struct boxer_init_reader r;
  char *str, *path;

  if (boxer_init_decode_start (data, size, &s))
    {
      struct boxer_init_writer w = { 0 };
      if (s.argv[0] == NULL || s.argv[0][0] == '\0' || s.cwd[0] != '/')
        abort ();
      encode_start (&s, &w);
      if (boxer_init_frame_finish (&w) < 0 || w.len - 9 != size || memcmp (w.data + 9, data, size))
        abort ();
      boxer_init_writer_release (&w);
      boxer_init_start_release (&s);
    }

  /* FILE_OPEN's fields, then its path as boxer-init checks it.  */
  boxer_init_reader_init (&r, data, size);
  for (int i = 0; i < 3; i++)
    {
      uint32_t v;
      boxer_init_get_u32 (&r, &v);
    }
  if (boxer_init_get_str (&r, BOXER_INIT_PATH_MAX, &str))
    {
      if (strlen (str) > BOXER_INIT_PATH_MAX)
        abort ();
      if (boxer_init_path_is_valid (str) && (str[0] != '/' || strstr (str, "/../")
                                             || strstr (str, "//") || strstr (str, "/./")))
        abort ();
      free (str);
    }

  /* Any bytes as a path.  */
  path = malloc (size + 1);
  if (path == NULL)
    return 0;
  memcpy (path, data, size);
  path[size] = '\0';
  boxer_init_path_is_valid (path);
  free (path);
  return 0;
}
