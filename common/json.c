#include <config.h>

#include "json.h"

json_object *
boxer_json_strv (char *const *strv)
{
  json_object *a;

  if (strv == NULL)
    return NULL;
  a = json_object_new_array ();
  for (size_t i = 0; strv[i]; i++)
    json_object_array_add (a, json_object_new_string (strv[i]));
  return a;
}

json_object *
boxer_json_string_or_null (const char *s)
{
  return s ? json_object_new_string (s) : NULL;
}
