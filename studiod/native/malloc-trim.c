/*
 * studiod's one native call (docs/design.md "Link server", memory): glibc's malloc_trim(0), which
 * walks every arena's free chunks and gives their whole pages back to the system (madvise
 * MADV_DONTNEED), and mallinfo2's totals. free() alone only ever shortens the top of an arena, so
 * the holes a burst of twenty agents leaves in the arenas (TurboFan's freed compiler zones, TLS
 * buffers, small files' Buffers) stay in studiod's RSS until this runs. Node has no binding for
 * it. Loaded by studiod/src/malloc-trim.ts; where it did not build or load, studiod goes on
 * without it. Node-API only (one build for every Node version).
 */
#include <node_api.h>

#if defined(__GLIBC__)
#include <malloc.h>

/* trim() -> boolean: malloc_trim(0), true if some memory was given back. */
static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  if (napi_get_boolean(env, malloc_trim(0) != 0, &out) != napi_ok) return NULL;
  return out;
}

/* arenas() -> [arena bytes, free bytes in them, mmap'd bytes]: mallinfo2's arena, fordblks, hblkhd. */
static napi_value Arenas(napi_env env, napi_callback_info info) {
  (void)info;
#if __GLIBC_PREREQ(2, 33)
  struct mallinfo2 m = mallinfo2();
  double v[3] = {(double)m.arena, (double)m.fordblks, (double)m.hblkhd};
#else
  struct mallinfo m = mallinfo();
  double v[3] = {(double)(unsigned)m.arena, (double)(unsigned)m.fordblks, (double)(unsigned)m.hblkhd};
#endif
  napi_value arr;
  if (napi_create_array_with_length(env, 3, &arr) != napi_ok) return NULL;
  for (uint32_t i = 0; i < 3; i++) {
    napi_value n;
    if (napi_create_double(env, v[i], &n) != napi_ok || napi_set_element(env, arr, i, n) != napi_ok) return NULL;
  }
  return arr;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"trim", NULL, Trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"arenas", NULL, Arenas, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, 2, props) != napi_ok) return NULL;
  return exports;
}
#else
/* Another libc (musl): no malloc_trim. The module loads with nothing in it; studiod says so. */
static napi_value Init(napi_env env, napi_value exports) {
  (void)env;
  return exports;
}
#endif

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
