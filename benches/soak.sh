#!/usr/bin/env bash
# Soak run of the real permgate binary (README, "Soak run"): mixed traffic
# (allowed, denied, 401, unmatched, spoofing, large bodies, the hostile
# targets of tests/data/bypass-corpus.txt), a routes reload every 3 s, a
# grants switch every 4 s, permission API and backend faults every minute;
# every second the gateway's RSS, open fds, open connections, latency and
# answers by class. Ends with an audit of every request the backend
# received against the route table. Writes summary.md, samples.csv,
# soak.png and permgate.log to the report folder.
#
#   benches/soak.sh [--duration 10m] [--rate 200] [--debug] [--out DIR] [--font FILE.ttf]
#
# --duration: seconds or a humantime string ("90s", "10m"); default 10m.
# --debug: build and run the debug profile (quicker to build; CI uses it).
# --out: default benches/results/soak-<duration>. Exits non-zero when the audit finds a request forwarded without
# permission, when an answer contradicts the route table, when RSS grows
# after warm-up (runs with 5 minutes or more after warm-up), or when the
# gateway dies or does not stop cleanly. Everything runs on 127.0.0.1 on
# ports the system picks; every process it starts is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10m RATE=200 PROFILE=release OUT="" FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
while (($#)); do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    --out) OUT=$2; shift 2 ;;
    --font) FONT=$2; shift 2 ;;
    *) echo "usage: $0 [--duration 10m] [--rate 200] [--debug] [--out DIR] [--font FILE.ttf]" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-benches/results/soak-$DURATION}

if [[ ! -r $FONT ]]; then
  echo "the plot's font $FONT is missing: apt-get install fonts-dejavu-core, or pass --font FILE.ttf" >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "cargo is not installed" >&2; exit 1; }

if [[ $PROFILE == release ]]; then
  cargo build --release --quiet --bin permgate --example soak
else
  cargo build --quiet --bin permgate --example soak
fi
exec "target/$PROFILE/examples/soak" --gateway "target/$PROFILE/permgate" --out "$OUT" \
  --duration "$DURATION" --rate "$RATE" --font "$FONT" --build "$PROFILE"
