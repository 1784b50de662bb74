#!/usr/bin/env bash
# Shipping checks (docs/shipping.md), run by .ci/run after the tests on the Release build they made:
# pack every src/ project, install the `tessera` tool from that folder into a temporary tool path and
# run it, and build the docfx API site with warnings as errors. Prints one line per check,
# "ship-check: NAME passed" or "ship-check: NAME failed" (with the failing output before it).
set -uo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() {
  local name=$1; shift
  local start=$SECONDS
  if "$@" >"$work/out" 2>&1; then
    echo "ship-check: $name passed ($((SECONDS - start)) s)"
  else
    tail -40 "$work/out"
    echo "ship-check: $name failed"
  fi
}

zip_list() { python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"; }
zip_nuspec() { python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(next(n for n in z.namelist() if n.endswith(".nuspec"))).decode())' "$1"; }

pack() {
  dotnet pack Tessera.sln -c Release --no-build -o "$work/packages" || return 1
  local projects packages
  projects=$(ls src/*/*.csproj | wc -l); packages=$(ls "$work"/packages/*.nupkg | wc -l)
  [ "$projects" -eq "$packages" ] || { echo "$projects src projects but $packages packages"; return 1; }
  local head; head=$(git rev-parse HEAD)
  for p in "$work"/packages/*.nupkg; do
    local files; files=$(zip_list "$p")
    grep -qx README.md <<<"$files" || { echo "$p has no README.md"; return 1; }
    grep -qx LICENSE <<<"$files" || { echo "$p has no LICENSE"; return 1; }
    if grep -q '^lib/' <<<"$files"; then grep -q '^lib/net10.0/.*\.xml$' <<<"$files" || { echo "$p has no XML docs"; return 1; }; fi
    local nuspec; nuspec=$(zip_nuspec "$p")
    grep -q "commit=\"$head\"" <<<"$nuspec" || { echo "$p does not record commit $head"; return 1; }
  done
}

install_tool() {
  local nupkg; nupkg=$(ls "$work"/packages/Tessera.[0-9]*.nupkg) || return 1
  local version; version=$(basename "$nupkg" .nupkg); version=${version#Tessera.}
  # Only the freshly packed folder as a source, so no other package named Tessera can be picked.
  printf '<?xml version="1.0" encoding="utf-8"?>\n<configuration><packageSources><clear /><add key="local" value="%s" /></packageSources></configuration>\n' "$work/packages" >"$work/nuget.config"
  dotnet tool install --tool-path "$work/tool" --configfile "$work/nuget.config" Tessera --version "$version"
}

tool_version() {
  local out; out=$("$work/tool/tessera" --version) || return 1
  echo "$out"
  [ "$out" = "tessera $(basename "$(ls "$work"/packages/Tessera.[0-9]*.nupkg)" .nupkg | sed 's/^Tessera\.//') (commit $(git rev-parse HEAD))" ]
}

tool_command() {
  # Real commands through the installed tool: byte-level encode; then train a small BPE tokenizer on
  # this repository's README and check that encode → decode gives the text back.
  local ids text
  ids=$("$work/tool/tessera" tokenizer encode --tokenizer bytes --text "tessera") || return 1
  echo "encode: $ids"; [ "$ids" = "116 101 115 115 101 114 97" ] || return 1
  "$work/tool/tessera" tokenizer train --input README.md --vocab-size 400 --out "$work/tok" || return 1
  ids=$("$work/tool/tessera" tokenizer encode --tokenizer "$work/tok" --text "Sparse mixture-of-experts models on a CPU") || return 1
  text=$("$work/tool/tessera" tokenizer decode --tokenizer "$work/tok" --ids "$ids") || return 1
  echo "round trip: $ids → $text"; [ "$text" = "Sparse mixture-of-experts models on a CPU" ] || return 1
  # A mistake through the tool is one error line and exit code 1.
  if "$work/tool/tessera" tokenizr --help 2>"$work/err"; then echo "a misspelt command exited 0"; return 1; fi
  grep -q "did you mean 'tokenizer'" "$work/err" || { cat "$work/err"; return 1; }
}

api_site() {
  dotnet tool restore && dotnet docfx site/docfx.json --warningsAsErrors && [ -f site/_site/index.html ]
}

check pack pack
check tool-install install_tool
check tool-version tool_version
check tool-command tool_command
check api-site api_site
