#!/usr/bin/env bash
# Runs one fuzz target under AFL++ for a fixed time and prints its figures.
#   fuzz/run.sh TARGET SECONDS [EXECS]   (targets: fuzz/run.sh --list)
# With EXECS, the run also stops once it has made that many executions (afl-fuzz -E).
# Needs: afl++ (Debian: apt-get install -y afl++) and the SharpFuzz instrumenter
# (dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0); both are installed on demand.
# Findings land in fuzz/findings/TARGET/default/crashes (not committed): turn each into a file under
# fuzz/regressions/TARGET plus a named test in tests/Tessera.Fuzz.Tests/RegressionTests.cs.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:-60}
execs=${3:-}
out=fuzz/bin
if [ "$target" = "--list" ]; then dotnet run -c Release --project fuzz/Tessera.Fuzz -- --list; exit 0; fi

command -v afl-fuzz >/dev/null || { apt-get update -q && apt-get install -y -q afl++; } >/dev/null
export PATH="$PATH:$HOME/.dotnet/tools"
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null

# A separate published copy, so instrumenting it never touches the normal build outputs.
if [ ! -f "$out/.instrumented" ] || [ -n "$(find src fuzz/Tessera.Fuzz -name '*.cs' -newer "$out/.instrumented" -print -quit)" ]; then
  rm -rf "$out"
  dotnet publish fuzz/Tessera.Fuzz -c Release -o "$out" --nologo -v q >/dev/null
  # Instrument our own code (every Tessera.* assembly but the harness itself) and the image codec
  # we decode untrusted bytes with, so the fuzzer sees its branches too.
  for dll in "$out"/Tessera.*.dll "$out"/StbImageSharp.dll; do
    case "$(basename "$dll")" in Tessera.Fuzz.dll) ;; *) sharpfuzz "$dll" >/dev/null ;; esac
  done
  touch "$out/.instrumented"
fi

findings=fuzz/findings/$target
rm -rf "$findings"; mkdir -p "$findings"
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1
export DOTNET_TieredPGO=0
# -t: a .NET start-up plus one input; -m none: the runtime reserves more address space than AFL's default.
timeout $((seconds + 60)) afl-fuzz -i "fuzz/corpus/$target" -o "$findings" -t 10000 -m none -V "$seconds" ${execs:+-E "$execs"} -- "$out/Tessera.Fuzz" "$target" >"$findings/afl.log" 2>&1 || true
stats="$findings/default/fuzzer_stats"
if [ ! -f "$stats" ]; then echo "afl-fuzz did not start; see $findings/afl.log"; tail -20 "$findings/afl.log"; exit 1; fi
get() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
crashes=$(find "$findings/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$findings/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
echo "target=$target seconds=$seconds run_time=$(get run_time) execs_done=$(get execs_done) execs_per_sec=$(get execs_per_sec) corpus_count=$(get corpus_count) saved_crashes=$crashes saved_hangs=$hangs edges_found=$(get edges_found)"
