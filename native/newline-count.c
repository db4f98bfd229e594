// Counts newlines in a byte range. A sink whose buffer is full under drop_oldest must count every line it evicts,
// and JavaScript's fastest count (Buffer#indexOf once per newline) costs about 4x this loop: on a stalled sink it is
// most of what forwarding adds to the sandbox path. No maintained npm package does this natively.
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static size_t count_newlines(const uint8_t *bytes, size_t length) {
  size_t count = 0, at = 0;
#if defined(__SSE2__)
  const __m128i newline = _mm_set1_epi8('\n');
  const __m128i zero = _mm_setzero_si128();
  const size_t whole = length - length % 16;
  while (at < whole) {
    // Per-byte-lane counters (a match is -1, subtracted) overflow after 255 blocks: sum them before that.
    size_t stop = at + 255 * 16 < whole ? at + 255 * 16 : whole;
    __m128i lanes = zero;
    for (; at < stop; at += 16) {
      lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(bytes + at)), newline));
    }
    __m128i sums = _mm_sad_epu8(lanes, zero);
    count += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_extract_epi16(sums, 4);
  }
#endif
  for (; at < length; at++) count += bytes[at] == '\n';
  return count;
}

// count(bytes: Uint8Array, from: number, to: number): number, newlines in bytes[from, to), range clamped.
static napi_value Count(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *data = NULL;
  size_t length = 0;
  uint32_t from = 0, to = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_typedarray_info(env, argv[0], NULL, &length, &data, NULL, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &from) != napi_ok || napi_get_value_uint32(env, argv[2], &to) != napi_ok) {
    napi_throw_type_error(env, NULL, "count(bytes: Uint8Array, from: number, to: number)");
    return NULL;
  }
  if (to > length) to = (uint32_t)length;
  napi_value result;
  napi_create_uint32(env, from < to ? (uint32_t)count_newlines((const uint8_t *)data + from, to - from) : 0, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value count;
  napi_create_function(env, "count", NAPI_AUTO_LENGTH, Count, NULL, &count);
  napi_set_named_property(env, exports, "count", count);
  return exports;
}
