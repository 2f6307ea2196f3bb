#!/usr/bin/env bash
# Checks the deploy files: the Kubernetes manifest against the API schemas
# (kubernetes-validate, strict), the systemd unit (systemd-analyze verify,
# where systemd is installed), and the config and routes the ConfigMap
# carries (permgate check, with a throwaway certificate in place of the
# Secret).
#
#   python3 -m venv /tmp/kv && /tmp/kv/bin/pip install kubernetes-validate
#   config/deploy/check.sh PERMGATE_BINARY /tmp/kv
set -euo pipefail
cd "$(dirname "$0")"
BIN=$(realpath "$1")
VENV=$2
VALIDATE=$VENV/bin/kubernetes-validate
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for manifest in kubernetes.yaml kubernetes-fleet.yaml; do
  echo "-- $manifest"
  "$VALIDATE" --strict "$manifest"
done

echo "-- permgate.service"
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/permgate|$BIN|" permgate.service >"$WORK/permgate.service"
  systemd-analyze verify "$WORK/permgate.service"
  echo "systemd-analyze verify: ok"
else
  echo "systemd-analyze is not installed here; unit not verified"
fi

for manifest in kubernetes.yaml kubernetes-fleet.yaml; do
  echo "-- the config and routes of $manifest"
  dir=$WORK/${manifest%.yaml}
  mkdir -p "$dir/config" "$dir/tls" "$dir/cache-key"
  "$VENV/bin/python" - "$manifest" "$dir/config" <<'PY'
import sys, yaml
manifest, out = sys.argv[1], sys.argv[2]
for doc in yaml.safe_load_all(open(manifest)):
    if doc and doc.get("kind") == "ConfigMap":
        for name, text in doc["data"].items():
            open(f"{out}/{name}", "w").write(text)
PY
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=permgate.test -keyout "$dir/tls/tls.key" -out "$dir/tls/tls.crt" 2>/dev/null
  head -c 32 /dev/urandom >"$dir/cache-key/key"
  "$BIN" check --config "$dir/config/permgate.toml"
done
