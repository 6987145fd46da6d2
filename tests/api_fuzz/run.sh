#!/usr/bin/env bash
# A real API fuzzer against the real binary: schemathesis (PyPI) reads /api/v1/openapi.json and
# sends thousands of generated requests, signed in as the demo centre's assessor, to every
# operation. It fails on any 5xx, any response that breaks its documented schema, any status or
# content type or header the document does not list. The seed is fixed so a failure reproduces;
# SCHEMATHESIS_EXAMPLES raises the examples per operation for a longer run.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v schemathesis >/dev/null 2>&1; then
  echo "Installing schemathesis (an OpenAPI fuzzer) with pip"
  python3 -m pip install --quiet 'schemathesis==4.32.5'
fi
binary="${EPORTFOLIO_BIN:-target/debug/eportfolio}"
data="$(mktemp -d /tmp/epf-fuzz-XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$data/server.log"
export EPORTFOLIO_DATA_DIR="$data" RUST_LOG=warn
unset DATABASE_URL
"$binary" --addr "127.0.0.1:$port" serve --demo >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$data"' EXIT
ready() { python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2)" 2>/dev/null; }
for _ in $(seq 1 600); do
  ready && break
  sleep 0.2
done
ready || { echo "the server did not become ready:" >&2; cat "$log" >&2; exit 1; }
token="$("$binary" token create --email marcus.bell@northgate.example | tail -n 1)"
schemathesis run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-10}" \
  --seed 20261201 \
  --no-color
if grep -q "request failed" "$log"; then
  echo "the server logged failed requests during the fuzzing:" >&2
  grep "request failed" "$log" | head -20 >&2
  exit 1
fi
