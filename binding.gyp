{
  "targets": [
    {
      "target_name": "newline_count",
      "sources": ["native/newline-count.c"],
      "cflags": ["-O3"]
    },
    {
      "target_name": "socket_queue",
      "sources": ["native/socket-queue.c"],
      "cflags": ["-O2"]
    },
    {
      "target_name": "mesos-logrotate-logger",
      "type": "executable",
      "sources": ["native/shim.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
