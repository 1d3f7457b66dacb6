{
  # The TUN addon (native/tun*.c) and the udp packet pump (native/pump_napi.c, native/pump/,
  # on the packet functions of native/packet/), plain C against Node-API: built by
  # `node-gyp rebuild` from npm's install script, loaded by src/kernel/tun.ts from build/Release.
  "targets": [
    {
      "target_name": "twill_tun",
      "sources": [
        "native/tun.c", "native/tun_read.c", "native/tun_write.c",
        "native/pump_napi.c", "native/pump/pump.c", "native/pump/pump_tx.c", "native/pump/pump_rx.c",
        "native/packet/packet.c", "native/packet/checksum.c", "native/packet/peer_table.c",
        "native/packet/forward.c", "native/packet/icmp.c", "native/packet/coalesce.c",
        "native/packet/segment.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wunused-parameter", "-O2"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      # The data path's packet functions in plain C (native/packet/), exposed to the tests by
      # native/packet_napi.c (test/unit/udp-native-diff.test.ts). Not loaded by the agent.
      "target_name": "twill_packet",
      "sources": [
        "native/packet_napi.c", "native/packet/packet.c", "native/packet/checksum.c",
        "native/packet/peer_table.c", "native/packet/forward.c", "native/packet/icmp.c",
        "native/packet/coalesce.c", "native/packet/segment.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wunused-parameter", "-O2"],
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
