{
  "targets": [
    {
      "target_name": "newline_count",
      "sources": ["native/newline-count.c"],
      "cflags": ["-O3"]
    },
    {
      "target_name": "mesos-logrotate-logger",
      "type": "executable",
      "sources": ["native/shim.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
