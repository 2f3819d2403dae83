{
  "variables": {
    "napi_build_version": "8"
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags": ["-Wall", "-Wextra", "-O2", "-fvisibility=hidden", "-fstack-protector-strong"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fstack-protector-strong"],
    "defines": ["NAPI_VERSION=8", "_GNU_SOURCE", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
  },
  "targets": [
    {
      "target_name": "vhostplug",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/json_scanner.cc",
        "native/stream.cc",
        "native/fsops.cc",
        "native/ownership.cc",
        "native/args.cc",
        "native/inotify.cc",
        "native/netlink.cc",
        "native/listener.cc"
      ],
      "include_dirs": ["native"],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    },
    {
      "target_name": "vhostplug-cni",
      "type": "executable",
      "sources": ["native/cni_shim.c"],
      "cflags": ["-std=c11"],
      "ldflags": ["-static-libgcc"]
    }
  ]
}
