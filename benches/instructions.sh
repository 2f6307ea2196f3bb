#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind (so
# other load on the machine does not change them): permgate (grants
# cached, one worker) and nginx `proxy_pass` (one process), both in front
# of examples/bench_upstream. examples/fixed_load sends a warm-up, then N
# and M requests over C keep-alive connections; the counters are zeroed
# before each batch and dumped after it, and the figure is
# (Ir(M) - Ir(N)) / (M - N), which cancels what is not per request.
#
#   benches/instructions.sh [-n N] [-m M] [-c C] [--no-nginx] [--nocache] [--bare] [BINARY]
#
# With --bare, examples/bare_proxy (hyper with permgate's settings and
# nothing else, the ceiling of benches/ceiling.sh) is counted too.
#
# With --nocache, permgate asks the permission API on every request (ttl
# 0 s) and nginx does the same with `auth_request`.
#
# Leaves the last dump of each in target/instructions/ for
# `callgrind_annotate --inclusive=yes`. Needs valgrind (callgrind_control);
# installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

N=2000 M=6000 C=32 NGINX=1 NOCACHE=0 BARE=0
while (($#)); do
  case "$1" in
    -n) N=$2; shift 2 ;;
    -m) M=$2; shift 2 ;;
    -c) C=$2; shift 2 ;;
    --no-nginx) NGINX=0; shift ;;
    --nocache) NOCACHE=1; shift ;;
    --bare) BARE=1; shift ;;
    -*) echo "usage: $0 [-n N] [-m M] [-c C] [--no-nginx] [--nocache] [--bare] [BINARY]" >&2; exit 2 ;;
    *) break ;;
  esac
done
BIN=${1:-target/release/permgate}
for tool in valgrind callgrind_control; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install valgrind)" >&2; exit 1; }
done
if ((NGINX)) && ! command -v nginx >/dev/null; then
  echo "note: nginx missing: permgate only" >&2
  NGINX=0
fi
if (($# == 0)); then
  cargo build --release --quiet --bin permgate
  cargo build --release --quiet --example bench_upstream --example fixed_load
fi
if ((BARE)); then
  cargo build --release --quiet --example bare_proxy
fi
OUTDIR=target/instructions
mkdir -p "$OUTDIR"

HOST=127.0.0.1 BACKEND=19330 GRANTS=19331 PERMGATE=19332 ADMIN=19333 NGINX_PORT=19334 BARE_PORT=19335
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS $PERMGATE $ADMIN $NGINX_PORT $BARE_PORT
start_backend
TARGET=/api/v2/integrations/credentials/42
AUTH='Bearer bench-token'

# Total Ir of the newest dump in $1's callgrind output files.
last_ir() { awk '/^(summary|totals):/ {print $2}' "$(ls -t "$1".* 2>/dev/null | grep -v '\.out$' | head -n1 || echo "$1")" | head -n1; }

# Ir per request of the process under callgrind (pid $1, output prefix $2),
# driven on port $3.
per_request() {
  local pid=$1 out=$2 port=$3 a b
  target/release/examples/fixed_load "$HOST:$port" "$TARGET" 500 "$C" "$AUTH"
  callgrind_control -z "$pid" >/dev/null 2>&1
  target/release/examples/fixed_load "$HOST:$port" "$TARGET" "$N" "$C" "$AUTH"
  callgrind_control -d "n$N" "$pid" >/dev/null 2>&1
  a=$(last_ir "$out")
  callgrind_control -z "$pid" >/dev/null 2>&1
  target/release/examples/fixed_load "$HOST:$port" "$TARGET" "$M" "$C" "$AUTH"
  callgrind_control -d "m$M" "$pid" >/dev/null 2>&1
  b=$(last_ir "$out")
  awk -v a="$a" -v b="$b" -v n="$N" -v m="$M" 'BEGIN { printf "%.0f", (b - a) / (m - n) }'
}

TTL=60s PG_LABEL="permgate (grants cached)" NG_LABEL="nginx proxy_pass" AUTHREQ=""
if ((NOCACHE)); then
  TTL=0s PG_LABEL="permgate (ttl 0 s)" NG_LABEL="nginx auth_request"
  AUTHREQ="auth_request /_authz;"
fi
permgate_config permgate $PERMGATE $ADMIN $TTL
rm -f "$OUTDIR"/permgate.* "$OUTDIR"/nginx.* "$OUTDIR"/bare.*
valgrind --tool=callgrind --callgrind-out-file="$OUTDIR/permgate.%p" \
  "$BIN" run --config "$DIR/permgate.toml" 2>"$DIR/valgrind-permgate.log" &
PG=$!
PIDS+=("$PG")
wait_ports $BACKEND $GRANTS
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/$HOST/$PERMGATE") 2>/dev/null && break; sleep 0.1; done
pg=$(per_request "$PG" "$OUTDIR/permgate.$PG" $PERMGATE)
printf '%-25s %s instructions per request\n' "$PG_LABEL" "$pg"

if ((BARE)); then
  valgrind --tool=callgrind --callgrind-out-file="$OUTDIR/bare.%p" \
    target/release/examples/bare_proxy "$HOST:$BARE_PORT" "$HOST:$BACKEND" 2>"$DIR/valgrind-bare.log" &
  BP=$!
  PIDS+=("$BP")
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/$HOST/$BARE_PORT") 2>/dev/null && break; sleep 0.1; done
  bp=$(per_request "$BP" "$OUTDIR/bare.$BP" $BARE_PORT)
  printf '%-25s %s instructions per request\n' "bare hyper proxy" "$bp"
fi

if ((NGINX)); then
  # One process (no master) so callgrind sees the requests; the same
  # nginx config as the other bench scripts otherwise.
  make_cert
  nginx_config nginx "$NGINX_PORT" "" "$AUTHREQ" "master_process off;"
  valgrind --tool=callgrind --callgrind-out-file="$OUTDIR/nginx.%p" \
    nginx -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" 2>"$DIR/valgrind-nginx.log" &
  NG=$!
  PIDS+=("$NG")
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/$HOST/$NGINX_PORT") 2>/dev/null && break; sleep 0.1; done
  ng=$(per_request "$NG" "$OUTDIR/nginx.$NG" $NGINX_PORT)
  printf '%-25s %s instructions per request\n' "$NG_LABEL" "$ng"
  awk -v a="$pg" -v b="$ng" 'BEGIN { printf "permgate/nginx            %.2fx\n", a / b }'
fi
echo "callgrind dumps: $OUTDIR (callgrind_annotate --inclusive=yes FILE)" >&2
