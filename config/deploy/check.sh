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

echo "-- kubernetes.yaml"
"$VALIDATE" --strict kubernetes.yaml

echo "-- permgate.service"
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/permgate|$BIN|" permgate.service >"$WORK/permgate.service"
  systemd-analyze verify "$WORK/permgate.service"
  echo "systemd-analyze verify: ok"
else
  echo "systemd-analyze is not installed here; unit not verified"
fi

echo "-- the ConfigMap's permgate.toml and routes.toml"
"$VENV/bin/python" - "$WORK" <<'PY'
import sys, yaml
work = sys.argv[1]
for doc in yaml.safe_load_all(open("kubernetes.yaml")):
    if doc and doc.get("kind") == "ConfigMap":
        for name, text in doc["data"].items():
            open(f"{work}/config-{name}", "w").write(text)
PY
mkdir -p "$WORK/config" "$WORK/tls"
mv "$WORK/config-permgate.toml" "$WORK/config/permgate.toml"
mv "$WORK/config-routes.toml" "$WORK/config/routes.toml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=permgate.test -keyout "$WORK/tls/tls.key" -out "$WORK/tls/tls.crt" 2>/dev/null
"$BIN" check --config "$WORK/config/permgate.toml"
