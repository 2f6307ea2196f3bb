# Shared by the bench scripts (sourced, not run): a work folder, the
# servers started (stopped on exit), port checks, the backend and
# permission API with the one-route table every script measures, medians.
# Expects HOST, BACKEND and GRANTS to be set.

DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

# Fails if any of the ports is taken on $HOST.
ports_free() {
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then echo "port $p is in use" >&2; exit 1; fi
  done
}

# Waits (at most 10 s each) until something listens on the ports; fails
# when nothing does.
wait_ports() {
  for p in "$@"; do
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null && continue 2; sleep 0.1; done
    echo "nothing listens on $p" >&2
    exit 1
  done
}

# How the servers are started: on CPU 1, unless the sourcing script set
# SERVERS first (an empty array runs them unpinned).
declare -p SERVERS &>/dev/null || SERVERS=(taskset -c 1)

# A throwaway P-256 certificate for localhost: $DIR/server.crt and
# $DIR/server.key (nginx_config names them even without TLS).
make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DIR/server.key" -out "$DIR/server.crt" 2>/dev/null
}

# The backend and permission API, and $DIR/routes.toml.
start_backend() {
  "${SERVERS[@]}" target/release/examples/bench_upstream "$HOST:$BACKEND" "$HOST:$GRANTS" &
  PIDS+=($!)
  cat >"$DIR/routes.toml" <<ROUTES
[[route]]
name = "credentials.get"
methods = ["GET"]
path = "/api/v2/integrations/credentials/{id}"
require = ["bench:item:view"]
ROUTES
}

CLK_TCK=$(getconf CLK_TCK)
# CPU ticks (utime+stime) of a process and its children (the nginx worker).
cpu_ticks() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
    { pid = $1; rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      if (pid == root || f[2] == root) t += f[12] + f[13] }
    END { print t + 0 }'
}

# wrk latency (1.23ms, 870.00us, 1.02s) in ms.
to_ms() { awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000; printf "%.2f", v }'; }

# The median of whitespace-separated numbers on stdin.
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# $DIR/$1.toml: permgate with one worker on $HOST:$2 (admin on $3) in front
# of the backend, grants from the permission API cached for $4 (60s when
# not given); with $5 = tls, TLS with $DIR/server.crt and $DIR/server.key.
permgate_config() {
  local tls=""
  [[ ${5:-} == tls ]] && tls=$'tls_cert = "server.crt"\ntls_key = "server.key"'
  cat >"$DIR/$1.toml" <<CONFIG
[server]
listen = "$HOST:$2"
workers = 1
$tls
[admin]
listen = "$HOST:$3"
[upstreams.default]
url = "http://$HOST:$BACKEND"
[grants]
source = "http"
url = "http://$HOST:$GRANTS/grants"
[grants.cache]
ttl = "${4:-60s}"
[routes]
file = "routes.toml"
watch = false
[log]
access_log = false
level = "warn"
CONFIG
}

# $DIR/$1/nginx.conf: nginx, one worker, in front of the backend on
# $HOST:$2 (listen parameters $3, such as "ssl http2", with $DIR/server.crt
# and $DIR/server.key), with $4 added to `location /` (such as
# "auth_request /_authz;", which asks the permission API), and $5 to the
# main context (such as "master_process off;").
nginx_config() {
  local d="$DIR/$1" user="" nofile
  nofile=$(ulimit -n)
  mkdir -p "$d"
  ((EUID == 0)) && user="user $(id -un) $(id -gn);"
  cat >"$d/nginx.conf" <<NGINX
$user
${5:-}
worker_processes 1;
worker_rlimit_nofile $nofile;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $((nofile / 2)); }
http {
  access_log off;
  server_tokens off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream backend { server $HOST:$BACKEND; keepalive 1024; keepalive_requests 1000000; keepalive_timeout 120s; }
  upstream grants { server $HOST:$GRANTS; keepalive 1024; keepalive_requests 1000000; keepalive_timeout 120s; }
  server {
    listen $HOST:$2 backlog=4096 $3;
    ssl_certificate $DIR/server.crt;
    ssl_certificate_key $DIR/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    location / {
      $4
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /_authz {
      internal;
      proxy_pass http://grants/authz;
      proxy_pass_request_body off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Content-Length "";
    }
  }
}
NGINX
}
