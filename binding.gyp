{
  "targets": [
    {
      "target_name": "newline_count",
      "sources": ["native/newline-count.c"],
      "cflags": ["-O3"]
    }
  ]
}
