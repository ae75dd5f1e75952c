#!/usr/bin/env bash
# Fails when a C++ or CUDA file of the repository differs from what .clang-format makes of it, or
# when any line of code, script or CMake file is over 110 columns. `scripts/check_format.sh --fix`
# formats the files in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=$(command -v clang-format-14 || command -v clang-format)
# The repository's files, new ones not yet added included.
files() { git ls-files --cached --others --exclude-standard "$@"; }
mapfile -t sources < <(files '*.cpp' '*.h' '*.cu' '*.cuh')
if [[ ${1:-} == --fix ]]; then
  "$clang_format" -i "${sources[@]}"
  exit 0
fi
"$clang_format" --dry-run --Werror "${sources[@]}"
mapfile -t all < <(files '*.cpp' '*.h' '*.cu' '*.cuh' '*.py' '*.sh' '*.cmake' 'CMakeLists.txt' \
  '*/CMakeLists.txt' '.ci/run')
long=$(python3 - "${all[@]}" <<'PY'
import sys
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if len(line.rstrip("\n")) > 110:
                print(f"{path}:{number}: {len(line.rstrip())} columns")
PY
)
if [[ -n $long ]]; then
  echo "$long"
  echo "lines over 110 columns (.clang-format's limit)"
  exit 1
fi
echo "format: ${#sources[@]} C++/CUDA files as .clang-format makes them; no line over 110 columns"
