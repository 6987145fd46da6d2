#!/usr/bin/env bash
# Page speed at centre scale, measured against the release binary with its embedded database:
#  1. generates a centre with `eportfolio demo --scale learners=N` into a fresh data dir (timed);
#  2. signs in once per role and runs wrk at 32 connections for DURATION seconds per page:
#     sign-in page, API sign-in (Argon2), learner portfolio, assessor caseload, tracking grid,
#     evidence detail, verifier audit trail (first and an older keyset page), API progress;
#  3. the same wrk run against a bare axum handler (examples/bare.rs) as the ceiling;
#  4. restart to ready (SIGTERM, start, poll /readyz every 10 ms; median of three) and the
#     server's resident memory (VmRSS) at start, and 5 s and 90 s after the load.
# Usage: benches/pages.sh [LEARNERS] [DURATION]   (defaults 10000 and 10). Prints Markdown.
# The generated data dir needs about 2 GiB per 1,000 learners of free disk.
# Installs wrk (Debian package) if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
learners=${1:-10000}
duration=${2:-10}
connections=32

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }; }
# BENCH_BIN and BENCH_BARE name already-built binaries (e.g. a copy of an earlier build, for a
# before/after comparison); otherwise the release build of this tree is used.
if [ -z "${BENCH_BIN:-}" ]; then cargo build --release --locked --quiet --bin eportfolio --example bare; fi
bin=${BENCH_BIN:-$PWD/target/release/eportfolio}
bare=${BENCH_BARE:-$PWD/target/release/examples/bare}
work=$(mktemp -d /tmp/epf-pages-XXXXXX)
data=$work/data
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
bare_port=$(free_port)
base=http://127.0.0.1:$port
# The scheduled whole-chain audit check (a minute after start) would land inside some page's run.
export EPORTFOLIO_DATA_DIR=$data RUST_LOG=warn EPORTFOLIO_CHAIN_CHECK_MINUTES=0
unset DATABASE_URL
server=""
bare_pid=""
cleanup() {
  [ -n "$bare_pid" ] && kill "$bare_pid" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
seconds() { python3 -c 'import time; print(time.time())'; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

start=$(seconds)
"$bin" demo --scale "learners=$learners" >"$work/generate.log" 2>&1 || { cat "$work/generate.log"; exit 1; }
end=$(seconds)
generate_s=$(python3 -c "print(f'{$end - $start:.0f}')")

start_server() {
  "$bin" --addr "127.0.0.1:$port" serve >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 1000); do curl -sf "$base/readyz" >/dev/null && return 0; sleep 0.01; done
  cat "$work/server.log"; exit 1
}
start_server
sleep 1
rss_start=$(rss_mib "$server")
restarts=()
for _ in 1 2 3; do
  kill -TERM "$server"; wait "$server" 2>/dev/null || true
  t0=$(seconds); start_server; t1=$(seconds)
  restarts+=("$(python3 -c "print($t1 - $t0)")")
done
restart_s=$(printf '%s\n' "${restarts[@]}" | sort -n | sed -n 2p)

password="scale centre password 2026"
learner=learner000009@learners.riverside.example
sign_in() { # EMAIL -> "name=value" of the session cookie
  local jar=$work/jar.$RANDOM
  local csrf
  csrf=$(curl -s -c "$jar" -b "$jar" "$base/login" | grep -o 'name="csrf_token" value="[^"]*"' | sed -n 1p | sed 's/.*value="//; s/"$//')
  curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$csrf" --data-urlencode "email=$1" \
    --data-urlencode "password=$password" --data-urlencode "next=/" "$base/login"
  awk '$6 ~ /session/ {print $6 "=" $7}' "$jar"
}
learner_cookie=$(sign_in "$learner")
# Learner 9's assessor (learner i has assessor i mod the number of assessors, 2 per 100 learners).
assessors=$(( (learners * 2 + 99) / 100 ))
assessor_cookie=$(sign_in "$(printf 'assessor%04d@riverside.example' $((9 % assessors)))")
verifier_cookie=$(sign_in verifier@awarding-body.example)
token=$("$bin" token create --email "$learner" 2>>"$work/tool.log" | tail -n 1)
[ -n "$token" ] || { cat "$work/tool.log"; exit 1; }
enrolment=$(curl -sf -H "Authorization: Bearer $token" "$base/api/v1/enrolments" | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("items", d) if isinstance(d, dict) else d; print(d[0]["id"])')
evidence=$(curl -sf -H "Cookie: $assessor_cookie" "$base/enrolments/$enrolment" | grep -o '/evidence/[0-9a-f-]\{36\}' | sed -n 1p)
older=$(curl -sf -H "Cookie: $verifier_cookie" "$base/audit" | grep -o 'href="/audit?[^"]*before=[^"]*"' | sed -n 1p | sed 's/^href="//; s/"$//; s/&amp;/\&/g')

cat >"$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %f %f %f %f %d %d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, errors))
end
LUA
cat >"$work/session.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"email":"$learner","password":"$password"}'
wrk.headers["Content-Type"] = "application/json"
$(cat "$work/report.lua")
LUA

rows=()
measure() { # LABEL URL SCRIPT [HEADER]
  local label=$1 url=$2 script=$3 header=${4:-}
  local args=(-t2 -c"$connections" -d"${duration}s" --timeout 10s -s "$script")
  [ -n "$header" ] && args+=(-H "$header")
  local status
  if [ "$script" = "$work/report.lua" ]; then
    status=$(curl -s -o /dev/null -w '%{http_code}' ${header:+-H "$header"} "$url")
    # A page that does not answer 200 even once is reported as such, and the run goes on.
    [ "$status" = 200 ] || { rows+=("$label FAILED $status"); return 0; }
  fi
  local result
  result=$(wrk "${args[@]}" "$url" | grep '^RESULT')
  rows+=("$label $result")
}
"$bare" "127.0.0.1:$bare_port" & bare_pid=$!
sleep 0.5
measure "bare-axum-handler" "http://127.0.0.1:$bare_port/" "$work/report.lua"
kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true; bare_pid=""
measure "sign-in-page" "$base/login" "$work/report.lua"
measure "learner-portfolio" "$base/enrolments/$enrolment" "$work/report.lua" "Cookie: $learner_cookie"
measure "assessor-caseload" "$base/dashboard" "$work/report.lua" "Cookie: $assessor_cookie"
measure "tracking-grid" "$base/enrolments/$enrolment/tracking" "$work/report.lua" "Cookie: $assessor_cookie"
measure "evidence-detail" "$base$evidence" "$work/report.lua" "Cookie: $assessor_cookie"
measure "verifier-audit-trail" "$base/audit" "$work/report.lua" "Cookie: $verifier_cookie"
measure "verifier-audit-trail-older-page" "$base$older" "$work/report.lua" "Cookie: $verifier_cookie"
measure "api-progress" "$base/api/v1/enrolments/$enrolment/progress" "$work/report.lua" "Authorization: Bearer $token"
measure "api-sign-in-argon2" "$base/api/v1/session" "$work/session.lua"
sleep 5
rss_idle=$(rss_mib "$server")
# A minute and a half later: the pool has closed the connections idle since the burst (60 s) and
# the allocator has handed back what they held.
sleep 85
rss_quiet=$(rss_mib "$server")
events=$("$bin" audit verify 2>/dev/null | tail -n 1)

python3 - "$learners" "$generate_s" "$restart_s" "$rss_start" "$rss_idle/$rss_quiet" "$events" "$connections" "$duration" "${rows[@]}" <<'PY'
import sys
learners, generate_s, restart_s, rss_start, rss_idle, events, conns, duration = sys.argv[1:9]
rows = [r.split() for r in sys.argv[9:]]
parsed = []
failed = []
for r in rows:
    if r[1] == "FAILED":
        failed.append((r[0].replace("-", " "), r[2]))
        continue
    label, _, requests, secs, p50, p95, p99, non2xx, errors = r
    parsed.append((label.replace("-", " "), int(requests) / float(secs), float(p50), float(p95), float(p99), int(non2xx), int(errors)))
ceiling = parsed[0][1]
print(f"learners={learners}: generated in {generate_s} s; {events}")
print()
print(f"| page ({conns} connections, {duration} s) | requests/s | p50 ms | p95 ms | p99 ms | non-2xx / errors | of bare handler |")
print("|---|---|---|---|---|---|---|")
for label, rps, p50, p95, p99, non2xx, errors in parsed:
    print(f"| {label} | {rps:.0f} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {non2xx} / {errors} | {rps / ceiling:.3f} |")
for label, status in failed:
    print(f"| {label} | answered {status} before the run | | | | | |")
print()
print(f"| restart to ready (median of 3) | {float(restart_s):.2f} s |")
print(f"| server RSS after start / 5 s after the load / 90 s after | {rss_start} MiB / {rss_idle.replace('/', ' MiB / ')} MiB |")
PY
