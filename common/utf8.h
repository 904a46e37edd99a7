#ifndef BOXER_COMMON_UTF8_H
#define BOXER_COMMON_UTF8_H

#include <stddef.h>

/* Return a NUL-terminated copy of data in which every byte sequence that is
   not valid UTF-8 (including overlong forms, surrogates and code points
   above U+10FFFF) is replaced by U+FFFD, so the text always makes valid
   JSON.  NUL bytes are valid UTF-8 and kept.  */
char *boxer_utf8_sanitize (const char *data, size_t len, size_t *len_out);

/* How many bytes at the end of data begin a valid sequence that the next
   bytes may complete (0 to 3): output read in pieces is sanitized up to
   them, and they wait for the next piece, so that a character split
   between two reads is not turned into replacement characters.  */
size_t boxer_utf8_incomplete_tail (const char *data, size_t len);

#endif
