{
  # The TUN addon (native/tun*.c), plain C against Node-API: built by `node-gyp rebuild`
  # from npm's install script, loaded by src/kernel/tun.ts from build/Release.
  "targets": [
    {
      "target_name": "twill_tun",
      "sources": ["native/tun.c", "native/tun_read.c", "native/tun_write.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wunused-parameter"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      # Not part of twill: flannel's udp proxy loop, the yardstick `twill bench --cases flannel-udp` runs.
      "target_name": "flannel_udp",
      "type": "executable",
      "sources": ["native/reference/flannel_udp.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
