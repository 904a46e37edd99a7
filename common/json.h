/* json-c helpers shared by the store, boxer-image and the executor
   protocol.  */
#ifndef BOXER_COMMON_JSON_H
#define BOXER_COMMON_JSON_H

#include <json-c/json.h>

/* A new array of strv's strings; NULL (JSON null) for a NULL strv.  */
json_object *boxer_json_strv (char *const *strv);
/* A new string, or NULL (JSON null) for NULL.  */
json_object *boxer_json_string_or_null (const char *s);

#endif
