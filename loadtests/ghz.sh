#!/usr/bin/env bash
# Loads a running preemption-oracle with ghz (https://ghz.sh), for users who have it.
# The server serves reflection, so no .proto file is needed.
#
#   loadtests/ghz.sh [ADDR] [REQUEST]
#
#   ADDR     the server, default 127.0.0.1:50051 (loopback only unless ALLOW_REMOTE=1)
#   REQUEST  a file in loadtests/requests/ (default place-native.json); the call follows
#            from its name: place-*.json → Place, placebatch-*.json → PlaceBatch,
#            pending-pods*.json → PendingPods
#
# Environment: CONCURRENCY (default 8), CONNECTIONS (default CONCURRENCY), DURATION
# (at most this long, default 10s), TOTAL (at most this many requests, default
# 1000000); extra ghz flags in GHZ_FLAGS (e.g. "--rps 5000").
#
# Example, against `cargo run --release -- serve --demo`:
#   loadtests/ghz.sh 127.0.0.1:50051 place-json.json
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
addr="${1:-127.0.0.1:50051}"
request="${2:-place-native.json}"
[[ -f "$request" ]] || request="$here/requests/$request"
[[ -f "$request" ]] || { echo "error: no request file $request" >&2; exit 2; }

case "$(basename "$request")" in
  placebatch-*) call=PlaceBatch ;;
  pending-pods*) call=PendingPods ;;
  place-*) call=Place ;;
  *) echo "error: cannot tell the call from the name $(basename "$request")" >&2; exit 2 ;;
esac

host="${addr%:*}"
case "$host" in
  127.*|localhost|'[::1]'|::1) ;;
  *)
    if [[ "${ALLOW_REMOTE:-0}" != 1 ]]; then
      echo "error: $addr is not a loopback address; set ALLOW_REMOTE=1 to load a remote server" >&2
      exit 2
    fi ;;
esac

command -v ghz >/dev/null 2>&1 || { echo "error: ghz is not installed (https://ghz.sh)" >&2; exit 2; }

concurrency="${CONCURRENCY:-8}"
# shellcheck disable=SC2086 # GHZ_FLAGS is a list of flags
exec ghz --insecure \
  --call "preemption_oracle.v1.PreemptionOracle/$call" \
  -D "$request" \
  --concurrency "$concurrency" \
  --connections "${CONNECTIONS:-$concurrency}" \
  --total "${TOTAL:-1000000}" \
  --max-duration "${DURATION:-10s}" \
  ${GHZ_FLAGS:-} \
  "$addr"
