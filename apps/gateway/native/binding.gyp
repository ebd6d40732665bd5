{
  "targets": [
    {
      "target_name": "fast_lane",
      "sources": ["fast_lane.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
