#!/usr/bin/env bash
# Load test of permgate on loopback: direct to the backend, permgate with
# grants cached, and permgate asking the permission API on every request.
# Prints requests/s, p50 and p99 for each. Installs nothing; stops every
# server it started (by PID) when it ends.
#
#   benches/load.sh [-c CONNS] [-d SECONDS] [--no-pin] [--reload]
#
# --reload adds a run of permgate (cached) while a loop swaps between two
# 10,000-route tables with POST /admin/reload every second, to show the
# latency a reload costs the requests in flight.
#
# Needs: wrk (apt-get install wrk), taskset (util-linux) unless --no-pin,
# and cargo. Ports 19180-19184 on 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=32 DURATION=8 PIN=1 RELOAD=0
while (($#)); do
  case "$1" in
    -c) CONNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --reload) RELOAD=1; shift ;;
    *) echo "usage: $0 [-c CONNS] [-d SECONDS] [--no-pin] [--reload]" >&2; exit 2 ;;
  esac
done

missing=()
command -v wrk >/dev/null || missing+=("wrk (apt-get install wrk)")
command -v cargo >/dev/null || missing+=("cargo")
((PIN)) && ! command -v taskset >/dev/null && missing+=("taskset (apt-get install util-linux), or pass --no-pin")
if ((${#missing[@]})); then
  printf 'missing: %s\n' "${missing[@]}" >&2
  exit 1
fi

HOST=127.0.0.1 BACKEND=19180 GRANTS=19181 CACHED=19182 UNCACHED=19183
if ((PIN)); then SERVERS=(taskset -c 1) LOADGEN=(taskset -c 0); else SERVERS=() LOADGEN=(); fi
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS $CACHED $UNCACHED 19184 19185
cargo build --release --quiet --bin permgate --example bench_upstream

start_backend
start_permgate() { # name port admin-port ttl
  permgate_config "$@"
  "${SERVERS[@]}" target/release/permgate run --config "$DIR/$1.toml" &
  PIDS+=($!)
}
# Both read $DIR/routes.toml; only the cached one is ever reloaded.
start_permgate cached $CACHED 19184 60s
start_permgate uncached $UNCACHED 19185 0s
wait_ports $BACKEND $GRANTS $CACHED $UNCACHED

# Two tables for --reload: the bench route plus 10,000 others, told apart
# by one permission so each reload really swaps.
cp "$DIR/routes.toml" "$DIR/base-routes.toml"
big_table() { # extra-permission
  cat "$DIR/base-routes.toml"
  awk -v p="$1" 'BEGIN { for (i = 0; i < 10000; i++) printf "[[route]]\nmethods = [\"GET\"]\npath = \"/api/v9/s%d/r%d/{id}\"\nrequire = [\"%s:%d\"]\n", i / 100, i % 100, p, i }'
}
if ((RELOAD)); then
  big_table bench:a0 >"$DIR/table-0.toml"
  big_table bench:a1 >"$DIR/table-1.toml"
fi
reload_loop() {
  local n=0
  while true; do
    cp "$DIR/table-$((n % 2)).toml" "$DIR/routes.toml"
    curl -s -o /dev/null -X POST "http://$HOST:19184/admin/reload"
    n=$((n + 1))
    sleep 1
  done
}

PATH_Q=/api/v2/integrations/credentials/42
printf '%-18s %6s %10s %9s %9s\n' setup conns req/s p50 p99
SETUPS=("direct:$BACKEND" "permgate:$CACHED" "permgate-nocache:$UNCACHED")
((RELOAD)) && SETUPS+=("permgate+reloads:$CACHED")
for setup in "${SETUPS[@]}"; do
  name=${setup%%:*} port=${setup##*:}
  LOOP=""
  if [[ $name == permgate+reloads ]]; then reload_loop & LOOP=$!; fi
  status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer bench-token' "http://$HOST:$port$PATH_Q" || true)
  [[ $status == 200 ]] || { echo "$name answered $status, not 200" >&2; exit 1; }
  "${LOADGEN[@]}" wrk -t1 -c"$CONNS" -d1s -H 'Authorization: Bearer bench-token' "http://$HOST:$port$PATH_Q" >/dev/null
  out=$("${LOADGEN[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H 'Authorization: Bearer bench-token' "http://$HOST:$port$PATH_Q")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  [[ -n $LOOP ]] && { kill "$LOOP"; wait "$LOOP" 2>/dev/null || true; }
  printf '%-18s %6s %10s %9s %9s\n' "$name" "$CONNS" "$rps" "$p50" "$p99"
done
