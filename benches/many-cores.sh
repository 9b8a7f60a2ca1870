#!/usr/bin/env bash
# How the oracle scales with cores: the query benches and the gRPC load tests on 2, 4,
# 8, … cores of one machine, each pinned with `taskset` to that many cores.
#
#   benches/many-cores.sh OUT_DIR
#
# - `place` bench at $NODES nodes (default 5000) on each core count in $CORES (default
#   2 4 8 16, those the machine has), rayon's pool sized to match; each run prints
#   its own straightforward baseline (one thread) and the ratio;
# - gRPC `Place` at 1,000 nodes (one pod shape, then a new shape every call) and
#   SyncState at 5,000 nodes (every update a change, then kubelet status updates),
#   the server pinned to 2 cores and then to all but the load generator's 4;
# - with LARGE=1, the `place` bench at 15,000 nodes on all cores.
#
# Binaries: $PLACE_BENCH, $ORACLE and $ORACLE_LOAD when set (prebuilt, for a machine
# without cargo), else built here. Each run's whole output goes to OUT_DIR/*.log; the
# summary lines are printed as they come.
set -euo pipefail

out=${1:?usage: benches/many-cores.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."

if [[ -z ${PLACE_BENCH:-} ]]; then
  PLACE_BENCH=$(cargo bench --bench place --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
if [[ -z ${ORACLE:-} || -z ${ORACLE_LOAD:-} ]]; then
  cargo build --release --bins
  ORACLE=target/release/preemption-oracle
  ORACLE_LOAD=target/release/oracle-load
fi

cpus=$(nproc)
nodes=${NODES:-5000}
duration=${DURATION:-8}
echo "machine: $cpus cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
if command -v lscpu > /dev/null; then
  echo "topology: $(lscpu | grep -E '^(Thread|Core|Socket|NUMA node\(s\))' | tr -s ' ' | paste -sd ';')"
fi

# `on_cores LIST`: sets $on_cores to the command prefix that pins a command to the
# cores in LIST (e.g. `0-1`), or to nothing without taskset.
on_cores() {
  on_cores=()
  if command -v taskset > /dev/null; then on_cores=(taskset -c "$1"); fi
}

# The load generator runs on the last 4 cores, apart from the server, when there are 8
# or more.
loader=()
if command -v taskset > /dev/null && ((cpus >= 8)); then
  loader=(taskset -c "$((cpus - 4))-$((cpus - 1))")
fi

for n in ${CORES-2 4 8 16}; do
  ((n <= cpus)) || continue
  log=$out/place-$nodes-${n}cores.log
  on_cores "0-$((n - 1))"
  "${on_cores[@]}" env RAYON_NUM_THREADS="$n" ORACLE_BENCH_NODES="$nodes" "$PLACE_BENCH" --bench \
    --warm-up-time 0.2 --measurement-time 0.5 > "$log" 2>&1
  grep -E '^(latency|ratio)' "$log" | grep -v remembering | sed "s/^/${n} cores: /"
done

# `serve CORES NODES PORT`: starts the demo server pinned to CORES cores; sets $server.
serve() {
  on_cores "0-$(($1 - 1))"
  "${on_cores[@]}" "$ORACLE" serve --demo --nodes "$2" --listen "127.0.0.1:$3" > "$out/serve-$3.log" 2>&1 &
  server=$!
  for _ in $(seq 1 240); do
    grep -q serving "$out/serve-$3.log" && return
    kill -0 $server 2> /dev/null || break
    sleep 0.5
  done
  echo "the server on port $3 did not start: $(tail -1 "$out/serve-$3.log")" >&2
  exit 1
}
stop_server() {
  if [[ -n $server ]]; then
    kill "$server"
    wait "$server" 2> /dev/null || true
    server=
  fi
}
server=
trap stop_server EXIT

server_cpu_s() {
  awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$server/stat"
}

if ((cpus >= 8)); then server_sizes="2 $((cpus - 4))"; else server_sizes=$cpus; fi
port=50161
for s in $server_sizes; do
  serve "$s" 1000 $port
  for shapes in 1 1000; do
    before=$(server_cpu_s)
    "${loader[@]}" "$ORACLE_LOAD" --server "127.0.0.1:$port" --clients 16 --threads 4 \
      --duration "$duration" --ingest-rate 1000 --shapes "$shapes" > "$out/place-grpc-${s}cores-$shapes.log" 2>&1
    echo "gRPC Place, server on $s cores, $shapes shape(s): $(grep -E '^place:' "$out/place-grpc-${s}cores-$shapes.log") server_cpu_s=$(awk "BEGIN { print $(server_cpu_s) - $before }")"
  done
  stop_server
  port=$((port + 1))

  serve "$s" 5000 $port
  for modify in image status; do
    "${loader[@]}" "$ORACLE_LOAD" --server "127.0.0.1:$port" --clients 1 --max-requests 1 --threads 2 \
      --duration 6 --ingest-rate 400000 --ingest-batch 1000 --churn-pods 30000 \
      --churn-modify $modify > "$out/sync-grpc-${s}cores-$modify.log" 2>&1
    echo "gRPC SyncState, server on $s cores, $modify: $(grep -E '^ingest:' "$out/sync-grpc-${s}cores-$modify.log")"
  done
  stop_server
  port=$((port + 1))
done

if [[ ${LARGE:-0} == 1 ]]; then
  log=$out/place-15000-${cpus}cores.log
  RAYON_NUM_THREADS=$cpus ORACLE_BENCH_NODES=15000 "$PLACE_BENCH" --bench \
    --warm-up-time 0.2 --measurement-time 0.5 > "$log" 2>&1
  grep -E '^(latency|ratio)' "$log" | grep -v remembering | sed "s/^/${cpus} cores: /"
fi
