#!/usr/bin/env bash
# Soak + abuse run of `tessera serve` on loopback (figures in docs/reliability.md).
#   bench/soak.sh MODEL [CLIENTS] [SECONDS] [MALFORMED] [MAX_QUEUE]
# MODEL: anything `tessera serve --model` takes (a run folder or checkpoint). The server runs with
# --max-queue MAX_QUEUE (default 128: no 429s at 64 clients; 8 for the overload run) and is
# stopped at the end. Prints `tessera bench serve` figures; exit 1 on any stream error, any
# malformed request answered with other than a 4xx, or a dead server.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/soak.sh MODEL [CLIENTS] [SECONDS] [MALFORMED] [MAX_QUEUE]}
clients=${2:-64}; seconds=${3:-600}; malformed=${4:-10000}; queue=${5:-128}
dotnet build src/Tessera.Cli -c Release --nologo -v q >/dev/null
tessera=src/Tessera.Cli/bin/Release/net10.0/tessera
port=$((20000 + RANDOM % 20000))
log=$(mktemp)
"$tessera" serve --model "$model" --host 127.0.0.1 --port "$port" --max-queue "$queue" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "server did not start:"; cat "$log"; exit 1; }
"$tessera" bench serve --url "http://127.0.0.1:$port/" --clients "$clients" --seconds "$seconds" --malformed "$malformed"
