#!/usr/bin/env bash
# Builds the libFuzzer target for the OVSDB framing scanner (native/fuzz/json_scanner_fuzz.cc)
# with ASan + UBSan and runs it for SECONDS (default 60). Exits non-zero on a crash, a
# sanitizer report or an invariant violation; the crashing input is left in native/fuzz/out/.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/native/fuzz/out
cxx=${CXX_FUZZ:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found (apt-get install clang libclang-rt-dev)" >&2
  exit 1
fi

mkdir -p "$out/seed" "$out/corpus"
"$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Wall -Wextra -I"$root/native" \
  "$root/native/fuzz/json_scanner_fuzz.cc" "$root/native/json_scanner.cc" -o "$out/json_scanner_fuzz"

# Seeds: the recorded ovsdb-server stream behind a few control-byte pairs (split point,
# limits; see the target's header), plus small hand-made edge cases.
fixtures=$root/test/fixtures/ovsdb-stream
for ctl in '\x00\x00' '\x80\x00' '\x5b\x00' '\xff\x00' '\x89\x00' '\x40\xc5' '\x13\x47'; do
  name=$(printf '%s' "$ctl" | tr -d '\\x')
  for f in "$fixtures"/*.stream; do
    { printf "$ctl"; head -c 4096 "$f"; } >"$out/seed/$(basename "$f" .stream)-head-$name"
    { printf "$ctl"; cat "$f"; } >"$out/seed/$(basename "$f" .stream)-$name"
  done
done
printf '\x40\x00{"a":"\\"}{[\\u00fc]"}\n[1,[2]] {"id":' >"$out/seed/escapes"
printf '\x81\x82[[[[[[]]]]]]' >"$out/seed/deep"
printf '\x10\x00{"a":[}' >"$out/seed/mismatch"
printf '\x10\x00\xc3\xbc{"\xf0\x9d\x84\x9e":1}' >"$out/seed/utf8-top"

echo "fuzz: running json_scanner_fuzz for ${secs}s"
"$out/json_scanner_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=20000 \
  -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "$out/seed"
