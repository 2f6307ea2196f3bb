#!/usr/bin/env bash
# Fetches GitHub's REST API description (npm package @octokit/openapi, a
# pinned version) into tests/data/cache/ for tests/openapi.rs. The tarball
# comes straight from the npm registry and must match the pinned sha512.
# Does nothing when the file is already there.
set -euo pipefail
cd "$(dirname "$0")"
version=23.0.2
integrity=sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg==
out=cache/api.github.com-$version.json
[[ -s $out ]] && { echo "$out is there"; exit 0; }
mkdir -p cache
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -sSfL --retry 3 -o "$work/openapi.tgz" \
  "https://registry.npmjs.org/@octokit/openapi/-/openapi-$version.tgz"
got=sha512-$(openssl dgst -sha512 -binary "$work/openapi.tgz" | openssl base64 -A)
if [[ $got != "$integrity" ]]; then
  echo "checksum mismatch for @octokit/openapi $version: $got" >&2
  exit 1
fi
tar -xzf "$work/openapi.tgz" -C "$work" package/generated/api.github.com.json
mv "$work/package/generated/api.github.com.json" "$out.tmp"
mv "$out.tmp" "$out"
echo "fetched $out"
