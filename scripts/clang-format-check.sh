#!/usr/bin/env bash
# clang-format over the native sources (.clang-format): `--dry-run -Werror` by default,
# `--fix` rewrites them in place.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'native/*.cc' 'native/*.h' 'native/*.c' 'native/**/*.cc' 'native/**/*.h' 'native/**/*.c' | sort -u)
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run -Werror "${files[@]}"
fi
