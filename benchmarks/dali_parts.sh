#!/usr/bin/env bash
# DALI's wheel (~200 MB) is larger than one device call may carry (64 MiB). Split it here into
# parts, carry them over consecutive calls into a folder outside the repo on the warm machine,
# and join them there:
#   bash benchmarks/dali_parts.sh split path/to/nvidia_dali*.whl .whl-parts   # here, 60 MB parts
#   bash benchmarks/dali_parts.sh join .whl                                      # there
set -euo pipefail
case "${1:-}" in
  split)
    wheel=$2; dir=$3; mkdir -p "$dir"
    split -b 60M -d "$wheel" "$dir/$(basename "$wheel").part-"
    (cd "$dir" && sha256sum "$(basename "$wheel")".part-* > "$(basename "$wheel").sha256") ;;
  join)
    dir=$2
    for first in "$dir"/*.whl.part-00; do
      [ -e "$first" ] || exit 0
      wheel=${first%.part-00}
      cat "$wheel".part-* > "$wheel" && rm "$wheel".part-*
    done ;;
  *) echo "usage: $0 split WHEEL DIR | join DIR" >&2; exit 2 ;;
esac
