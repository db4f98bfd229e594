// Counts newlines in a byte range, and copies a range while counting its newlines. A sink's buffer counts every
// line it takes in, and JavaScript's fastest count (Buffer#indexOf once per newline) costs about 4x this loop: on a
// stalled sink it was most of what forwarding added to the sandbox path. Counting while copying reads the bytes
// once. No maintained npm package does either natively.
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Newlines in bytes[0, length); with `copy_to`, the bytes are also copied there (the ranges must not overlap).
static size_t count_newlines(const uint8_t *bytes, size_t length, uint8_t *copy_to) {
  size_t count = 0, at = 0;
#if defined(__SSE2__)
  const __m128i newline = _mm_set1_epi8('\n');
  const __m128i zero = _mm_setzero_si128();
  const size_t whole = length - length % 16;
  while (at < whole) {
    // Per-byte-lane counters (a match is -1, subtracted) overflow after 255 blocks: sum them before that.
    size_t stop = at + 255 * 16 < whole ? at + 255 * 16 : whole;
    __m128i lanes = zero;
    if (copy_to != NULL) {
      for (; at < stop; at += 16) {
        __m128i block = _mm_loadu_si128((const __m128i *)(bytes + at));
        _mm_storeu_si128((__m128i *)(copy_to + at), block);
        lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(block, newline));
      }
    } else {
      for (; at < stop; at += 16) {
        lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(bytes + at)), newline));
      }
    }
    __m128i sums = _mm_sad_epu8(lanes, zero);
    count += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_extract_epi16(sums, 4);
  }
#endif
  for (; at < length; at++) {
    if (copy_to != NULL) copy_to[at] = bytes[at];
    count += bytes[at] == '\n';
  }
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
  napi_create_uint32(env, from < to ? (uint32_t)count_newlines((const uint8_t *)data + from, to - from, NULL) : 0, &result);
  return result;
}

// copyCount(source: Uint8Array, from: number, to: number, target: Uint8Array, at: number): number, copies
// source[from, to) to target[at, ...) and returns its newlines; the range is clamped to both arrays.
static napi_value CopyCount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  void *source = NULL, *target = NULL;
  size_t source_length = 0, target_length = 0;
  uint32_t from = 0, to = 0, at = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_typedarray_info(env, argv[0], NULL, &source_length, &source, NULL, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &from) != napi_ok || napi_get_value_uint32(env, argv[2], &to) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], NULL, &target_length, &target, NULL, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &at) != napi_ok) {
    napi_throw_type_error(env, NULL, "copyCount(source: Uint8Array, from: number, to: number, target: Uint8Array, at: number)");
    return NULL;
  }
  if (to > source_length) to = (uint32_t)source_length;
  if (at > target_length) at = (uint32_t)target_length;
  if (from < to && to - from > target_length - at) to = from + (uint32_t)(target_length - at);
  napi_value result;
  size_t count = from < to ? count_newlines((const uint8_t *)source + from, to - from, (uint8_t *)target + at) : 0;
  napi_create_uint32(env, (uint32_t)count, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value count, copy_count;
  napi_create_function(env, "count", NAPI_AUTO_LENGTH, Count, NULL, &count);
  napi_set_named_property(env, exports, "count", count);
  napi_create_function(env, "copyCount", NAPI_AUTO_LENGTH, CopyCount, NULL, &copy_count);
  napi_set_named_property(env, exports, "copyCount", copy_count);
  return exports;
}
