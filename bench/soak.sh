#!/usr/bin/env bash
# Soak + abuse run of `tessera serve` on loopback (figures in docs/reliability.md).
#   bench/soak.sh MODEL [CLIENTS] [SECONDS] [MALFORMED] [MAX_QUEUE]
# MODEL: anything `tessera serve --model` takes (a run folder or checkpoint). The server runs with
# --max-queue MAX_QUEUE (default 128: no 429s at 64 clients; 8 for the overload run) and is
# stopped at the end. Prints `tessera bench serve` figures; exit 1 on any stream error, any
# malformed request answered with other than a 4xx, or a dead server.
# SOAK_SERVE_ARGS="...": extra `tessera serve` flags (e.g. --prefix-cache-mb 0).
# SOAK_PROC_LOG=FILE: also sample the server's /proc status every 10 s into FILE (seconds, RSS,
# anonymous and file-backed resident KB, threads; managed heap, malloc in use and malloc free MB,
# managed bytes allocated so far and collections by generation, from /metrics), to see what grows.
# SOAK_SMAPS_DIR=DIR: also copy the server's /proc/PID/smaps into DIR every 30 s; then
#   python3 bench/smaps_split.py DIR splits its resident memory into the managed heap's reservation
#   and the rest (JIT code, the C heap's main heap and arenas, other anonymous memory, files).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/soak.sh MODEL [CLIENTS] [SECONDS] [MALFORMED] [MAX_QUEUE]}
clients=${2:-64}; seconds=${3:-600}; malformed=${4:-10000}; queue=${5:-128}
dotnet build src/Tessera.Cli -c Release --nologo -v q >/dev/null
tessera=src/Tessera.Cli/bin/Release/net10.0/tessera
port=$((20000 + RANDOM % 20000))
log=$(mktemp)
"$tessera" serve --model "$model" --host 127.0.0.1 --port "$port" --max-queue "$queue" ${SOAK_SERVE_ARGS:-} >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "server did not start:"; cat "$log"; exit 1; }
if [ -n "${SOAK_PROC_LOG:-}" ]; then
  ( echo "seconds rss_kb anon_kb file_kb threads managed_mb malloc_in_use_mb malloc_free_mb allocated_mb gc0 gc1 gc2"; t0=$(date +%s)
    while kill -0 "$server" 2>/dev/null; do
      st=/proc/$server/status
      heap=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^tessera_process_managed_memory_bytes/ {m=$NF} /^tessera_process_malloc_in_use_bytes/ {u=$NF} /^tessera_process_malloc_free_bytes/ {f=$NF} /^tessera_process_managed_allocated_bytes_total/ {a=$NF} /^tessera_process_gc_collections_total.*generation="0"/ {g0=$NF} /^tessera_process_gc_collections_total.*generation="1"/ {g1=$NF} /^tessera_process_gc_collections_total.*generation="2"/ {g2=$NF} END {printf "%.1f %.1f %.1f %.1f %d %d %d", m/1048576, u/1048576, f/1048576, a/1048576, g0, g1, g2}')
      echo "$(( $(date +%s) - t0 )) $(awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} /^Threads/{t=$2} END{print r, a, f, t}' $st) ${heap:-? ? ? ? ? ? ?}"
      sleep 10
    done ) >"$SOAK_PROC_LOG" 2>/dev/null &
fi
if [ -n "${SOAK_SMAPS_DIR:-}" ]; then
  mkdir -p "$SOAK_SMAPS_DIR"
  ( t0=$(date +%s)
    while kill -0 "$server" 2>/dev/null; do
      cp "/proc/$server/smaps" "$SOAK_SMAPS_DIR/smaps.$(( $(date +%s) - t0 ))" 2>/dev/null
      sleep 30
    done ) &
fi
"$tessera" bench serve --url "http://127.0.0.1:$port/" --clients "$clients" --seconds "$seconds" --malformed "$malformed"
