// The bytes of a TCP socket's send queue that the peer has not acknowledged (ioctl SIOCOUTQ: unsent plus sent and
// unacknowledged). A syslog stream sink counts a frame as sent only once the peer's TCP acknowledged it, and Node
// exposes nothing of TCP's acknowledgements. Linux only; elsewhere the module exports nothing and the sink falls back
// to counting a frame sent when the kernel took it.
#include <node_api.h>

#if defined(__linux__)
#include <linux/sockios.h>
#include <sys/ioctl.h>

// unacknowledged(fd: number): number, the send queue's bytes, or -1 if the ioctl failed (not a connected TCP socket).
static napi_value Unacknowledged(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "unacknowledged(fd: number)");
    return NULL;
  }
  int queued = -1;
  if (fd < 0 || ioctl(fd, SIOCOUTQ, &queued) != 0) queued = -1;
  napi_value result;
  napi_create_int32(env, queued, &result);
  return result;
}
#endif

NAPI_MODULE_INIT() {
#if defined(__linux__)
  napi_value unacknowledged;
  napi_create_function(env, "unacknowledged", NAPI_AUTO_LENGTH, Unacknowledged, NULL, &unacknowledged);
  napi_set_named_property(env, exports, "unacknowledged", unacknowledged);
#endif
  return exports;
}
