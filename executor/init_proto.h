/* The protocol between the executor and boxer-init (executor/init.c), the
   first process of a sandbox, over boxer-init's stdin (commands) and stdout
   (events).  Both sides include this file; it uses nothing but libc, so
   boxer-init stays a small static binary.

   Frame: a 4-byte big-endian length L (5 <= L <= BOXER_INIT_FRAME_MAX),
   then L bytes: a 1-byte type, a 4-byte big-endian id, the payload.
   Payload fields are big-endian u32 and u64 integers and strings (a u32
   length, then that many bytes without NUL).  A frame whose fields do not
   exactly fill it is malformed; boxer-init answers an ERROR and ignores it.

   The executor sends (id names the file, run or collection it is about):

     FILE_OPEN   u32 uid, u32 gid, u32 mode, str path     a file, put in place over what was
                                                           there at FILE_CLOSE (missing
                                                           directories made, uid's)
     FILE_DATA   bytes                                     appended to the open file
     FILE_CLOSE                                            done: FILE_DONE or ERROR answers
     START       u32 uid, u32 gid, u32 flags (BOXER_INIT_START_*),
                 u64 nproc, u64 nofile, u64 as_bytes,
                 u64 wall_ms, u64 stdout_cap, u64 stderr_cap,
                 str cwd, u32 argc, str argv..., u32 envc, str env...
     STDIN       bytes; empty: end of input
     KILL        u32 signal
     COLLECT     str dir, u64 max_files, u64 max_bytes
     READ        str path, u64 max_bytes                   one regular file (a session's):
                                                           OUTPUT, OUTPUT_DATA, OUTPUT_END,
                                                           or ERROR

   boxer-init sends:

     READY       u32 version                               once, first
     FILE_DONE
     STARTED     u32 pid
     STDOUT      bytes, as the program writes them (up to stdout_cap in all)
     STDERR      bytes
     EXIT        u32 status (exit code, or 128 + signal), u32 signal,
                 u32 flags (BOXER_INIT_*), u64 wall_ms
     OUTPUT      str path (relative to dir), u64 size      then OUTPUT_DATA frames
     OUTPUT_DATA bytes
     OUTPUT_END  u32 flags (BOXER_INIT_OUTPUTS_TRUNCATED)
     ERROR       str message                               the command of this id failed

   The program never holds either descriptor: it runs with pipes of its
   own as stdin, stdout and stderr, as another user, and cannot write a
   frame.  */
#ifndef BOXER_EXECUTOR_INIT_PROTO_H
#define BOXER_EXECUTOR_INIT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOXER_INIT_VERSION 3
/* Frames are small: data travels in chunks of at most BOXER_INIT_CHUNK.  */
#define BOXER_INIT_FRAME_MAX (256 * 1024)
#define BOXER_INIT_CHUNK (64 * 1024)
/* Bounds of a START: argv and env entries, and all their bytes.  */
#define BOXER_INIT_MAX_ARGS 4096
#define BOXER_INIT_PATH_MAX 4096

enum boxer_init_type
{
  BOXER_INIT_FILE_OPEN = 1,
  BOXER_INIT_FILE_DATA = 2,
  BOXER_INIT_FILE_CLOSE = 3,
  BOXER_INIT_START = 4,
  BOXER_INIT_STDIN = 5,
  BOXER_INIT_KILL = 6,
  BOXER_INIT_COLLECT = 7,
  BOXER_INIT_READ = 8,

  BOXER_INIT_READY = 0x81,
  BOXER_INIT_FILE_DONE = 0x82,
  BOXER_INIT_STARTED = 0x83,
  BOXER_INIT_STDOUT = 0x84,
  BOXER_INIT_STDERR = 0x85,
  BOXER_INIT_EXIT = 0x86,
  BOXER_INIT_OUTPUT = 0x87,
  BOXER_INIT_OUTPUT_DATA = 0x88,
  BOXER_INIT_OUTPUT_END = 0x89,
  BOXER_INIT_ERROR = 0x8f,
};

/* START flags.  A batch's runs share one sandbox, so each gets a mount
   namespace of its own with fresh tmpfs on /tmp, /var/tmp, /dev/shm and
   /output (OWN_TMP), and its own uid, every process of which is killed
   when its main process ends (KILL_UID: also what left the process
   group).  */
#define BOXER_INIT_START_OWN_TMP 1u
#define BOXER_INIT_START_KILL_UID 2u
#define BOXER_INIT_START_FLAGS (BOXER_INIT_START_OWN_TMP | BOXER_INIT_START_KILL_UID)

/* EXIT flags.  */
#define BOXER_INIT_TIMED_OUT 1u
#define BOXER_INIT_STDOUT_TRUNCATED 2u
#define BOXER_INIT_STDERR_TRUNCATED 4u
/* OUTPUT_END flags.  */
#define BOXER_INIT_OUTPUTS_TRUNCATED 1u

/* Building a frame: start, add fields, finish (which writes the length).  */
struct boxer_init_writer
{
  unsigned char *data;
  size_t len, alloc;
  bool failed;          /* out of memory, or over BOXER_INIT_FRAME_MAX */
};

void boxer_init_frame_start (struct boxer_init_writer *w, uint8_t type, uint32_t id);
void boxer_init_put_u32 (struct boxer_init_writer *w, uint32_t v);
void boxer_init_put_u64 (struct boxer_init_writer *w, uint64_t v);
void boxer_init_put_bytes (struct boxer_init_writer *w, const void *p, size_t n);
void boxer_init_put_str (struct boxer_init_writer *w, const char *s, size_t n);
/* 0, or -1 when the frame failed (its data is then released).  */
int boxer_init_frame_finish (struct boxer_init_writer *w);
void boxer_init_writer_release (struct boxer_init_writer *w);

/* Reading a frame's payload: each get fails (returns false, and every
   later get too) past the end or on a string with a NUL or longer than
   max; boxer_init_reader_done () is true when every byte was read and
   nothing failed.  Strings are copied out NUL-terminated (caller frees).  */
struct boxer_init_reader
{
  const unsigned char *p;
  size_t left;
  bool failed;
};

void boxer_init_reader_init (struct boxer_init_reader *r, const void *payload, size_t len);
bool boxer_init_get_u32 (struct boxer_init_reader *r, uint32_t *v);
bool boxer_init_get_u64 (struct boxer_init_reader *r, uint64_t *v);
bool boxer_init_get_str (struct boxer_init_reader *r, size_t max, char **s);
bool boxer_init_reader_done (const struct boxer_init_reader *r);

/* A START, decoded.  */
struct boxer_init_start
{
  uint32_t uid, gid, flags;
  /* nproc: the most processes of the program, itself included (0: no
     bound).  */
  uint64_t nproc, nofile, as_bytes, wall_ms, stdout_cap, stderr_cap;
  char *cwd;
  char **argv;          /* NULL-terminated, argc >= 1 */
  char **env;           /* NULL-terminated */
};

/* Decode a START payload; false when malformed (nothing to release then).  */
bool boxer_init_decode_start (const void *payload, size_t len, struct boxer_init_start *out);
void boxer_init_start_release (struct boxer_init_start *s);

/* Whether path is absolute and normal ("/a/b": no empty, "." or ".."
   components, no trailing slash), at most BOXER_INIT_PATH_MAX bytes, and
   not the root itself.  */
bool boxer_init_path_is_valid (const char *path);

#endif
