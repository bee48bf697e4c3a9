#!/bin/sh
# splice_doc.sh FILE NAME — prints FILE with the lines between "<!-- BEGIN NAME -->" and
# "<!-- END NAME -->" replaced by standard input. `make docs` writes the result back;
# `make check-docs` compares it with the file, so generated sections cannot go stale.
set -eu
file=$1 name=$2
gen=$(mktemp)
trap 'rm -f "$gen"' EXIT
cat > "$gen"
grep -q "<!-- BEGIN $name -->" "$file" || { echo "$file: no BEGIN $name marker" >&2; exit 1; }
awk -v begin="<!-- BEGIN $name -->" -v end="<!-- END $name -->" -v gen="$gen" '
  $0 == begin { print; while ((getline line < gen) > 0) print line; skip = 1; next }
  $0 == end   { skip = 0 }
  !skip       { print }
' "$file"
