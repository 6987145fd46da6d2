#!/usr/bin/env bash
# Upload speed and memory, measured against the release binary with its embedded database:
#  1. one 1 GiB recording through POST /api/v1/enrolments/{id}/evidence, against a plain copy of
#     the same file on the same disk in the same run (dd with fsync, as the server fsyncs);
#  2. the server's resident memory (VmRSS, sampled every 50 ms) before and at its highest during it;
#  3. ten concurrent 100 MiB uploads, each of which must be answered 201.
# Usage: benches/upload.sh [SIZE_MIB]   (default 1024). Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
cargo build --release --locked --quiet
bin=$PWD/target/release/eportfolio
work=$(mktemp -d /tmp/epf-bench-XXXXXX)
data=$work/data
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
export EPORTFOLIO_DATA_DIR=$data RUST_LOG=warn
unset DATABASE_URL

cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" --addr 127.0.0.1:$port serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/readyz" >/dev/null || { cat "$work/server.log"; exit 1; }
echo "correct horse battery staple 42" | "$bin" user add --email bench.learner@example.org --name "Bench Learner" --role learner --password-stdin >/dev/null
echo "correct horse battery staple 43" | "$bin" user add --email bench.assessor@example.org --name "Bench Assessor" --role assessor --password-stdin >/dev/null
enrolment=$("$bin" enrol --learner bench.learner@example.org --unit CC20 --assessor bench.assessor@example.org | tail -n 1)
token=$("$bin" token create --email bench.learner@example.org | tail -n 1)

# A WAV header, then random bytes: typed as audio from its content, incompressible.
make_recording() { # FILE MIB
  printf 'RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff' >"$1"
  head -c "$(($2 * 1024 * 1024))" /dev/urandom >>"$1"
}
make_recording "$work/big.wav" "$size_mib"
bytes=$(stat -c %s "$work/big.wav")

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
upload() { # FILE TITLE -> HTTP status
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
    -F "metadata={\"title\":\"$2\",\"method\":\"product\",\"occurred_on\":\"2026-03-02\",\"criteria\":[\"1.4\"],\"declaration\":true,\"third_party_confirmed\":true};type=application/json" \
    -F "file=@$1;type=audio/wav" "$base/api/v1/enrolments/$enrolment/evidence"
}
seconds() { python3 -c 'import sys,time; print(time.time())'; }

sync; sleep 1
start=$(seconds); dd if="$work/big.wav" of="$data/plain-copy" bs=1M conv=fsync status=none; end=$(seconds)
copy_s=$(python3 -c "print($end - $start)")
rm -f "$data/plain-copy"; sync

rss_before=$(rss_kib)
( peak=0; while kill -0 "$server" 2>/dev/null; do r=$(rss_kib); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$work/peak"; sleep 0.05; done ) &
sampler=$!
start=$(seconds); status=$(upload "$work/big.wav" "One large recording"); end=$(seconds)
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
[ "$status" = 201 ] || { echo "large upload answered $status"; tail -20 "$work/server.log"; exit 1; }
upload_s=$(python3 -c "print($end - $start)")
rss_peak=$(cat "$work/peak")

for i in $(seq 1 10); do make_recording "$work/c$i.wav" 100; done
start=$(seconds)
pids=()
for i in $(seq 1 10); do upload "$work/c$i.wav" "Concurrent $i" >"$work/c$i.status" & pids+=($!); done
wait "${pids[@]}"
end=$(seconds)
ok=0; for i in $(seq 1 10); do [ "$(cat "$work/c$i.status")" = 201 ] && ok=$((ok + 1)); done
concurrent_s=$(python3 -c "print($end - $start)")

python3 - "$bytes" "$copy_s" "$upload_s" "$rss_before" "$rss_peak" "$ok" "$concurrent_s" <<'PY'
import sys
size, copy_s, upload_s, before, peak, ok, conc = sys.argv[1:]
size, copy_s, upload_s, before, peak, conc = int(size), float(copy_s), float(upload_s), int(before), int(peak), float(conc)
mib = size / 1048576
print(f"| measure | figure |")
print(f"|---|---|")
print(f"| file | {mib:.0f} MiB |")
print(f"| plain copy (dd, fsync) | {copy_s:.2f} s, {mib / copy_s:.0f} MiB/s |")
print(f"| upload through the API | {upload_s:.2f} s, {mib / upload_s:.0f} MiB/s |")
print(f"| upload / plain copy throughput | {copy_s / upload_s:.2f} |")
print(f"| server RSS before → peak during | {before / 1024:.1f} MiB → {peak / 1024:.1f} MiB (growth {(peak - before) / 1024:.1f} MiB) |")
print(f"| ten concurrent 100 MiB uploads | {ok}/10 answered 201 in {conc:.1f} s |")
PY
