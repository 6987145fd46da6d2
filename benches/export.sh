#!/usr/bin/env bash
# Export memory and speed, measured against the release binary with its embedded database:
#  1. a portfolio holding one 1 GiB recording, exported as the offline ZIP through
#     GET /api/v1/enrolments/{id}/export, against a plain read of the stored file (cat, cold);
#  2. the server's resident memory (VmRSS, sampled every 50 ms) before and at its highest during it;
#  3. `eportfolio export verify` on the downloaded ZIP.
# Usage: benches/export.sh [SIZE_MIB]   (default 1024). Prints a Markdown table for BENCHMARKS.md.
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
printf 'RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff' >"$work/big.wav"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >>"$work/big.wav"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  -F "metadata={\"title\":\"One large recording\",\"method\":\"product\",\"occurred_on\":\"2026-03-02\",\"criteria\":[\"1.4\"],\"declaration\":true,\"third_party_confirmed\":true};type=application/json" \
  -F "file=@$work/big.wav;type=audio/wav" "$base/api/v1/enrolments/$enrolment/evidence")
[ "$status" = 201 ] || { echo "upload answered $status"; tail -20 "$work/server.log"; exit 1; }
bytes=$(stat -c %s "$work/big.wav")
rm -f "$work/big.wav"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
seconds() { python3 -c 'import time; print(time.time())'; }
stored=$(find "$data/files" -type f -size +1M | head -n 1)

sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
start=$(seconds); cat "$stored" >/dev/null; end=$(seconds)
read_s=$(python3 -c "print($end - $start)")
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true

rss_before=$(rss_kib)
echo "$rss_before" >"$work/peak"
( peak=0; while kill -0 "$server" 2>/dev/null; do r=$(rss_kib); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$work/peak"; sleep 0.05; done ) &
sampler=$!
start=$(seconds)
status=$(curl -s -o "$work/export.zip" -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/v1/enrolments/$enrolment/export")
end=$(seconds)
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
[ "$status" = 200 ] || { echo "export answered $status"; tail -20 "$work/server.log"; exit 1; }
export_s=$(python3 -c "print($end - $start)")
rss_peak=$(cat "$work/peak")
zip_bytes=$(stat -c %s "$work/export.zip")
start=$(seconds); verified=$("$bin" export verify "$work/export.zip"); end=$(seconds)
verify_s=$(python3 -c "print($end - $start)")

python3 - "$bytes" "$read_s" "$export_s" "$rss_before" "$rss_peak" "$zip_bytes" "$verify_s" "$verified" <<'PY'
import sys
size, read_s, export_s, before, peak, zip_bytes, verify_s, verified = sys.argv[1:]
size, read_s, export_s, before, peak, zip_bytes, verify_s = int(size), float(read_s), float(export_s), int(before), int(peak), int(zip_bytes), float(verify_s)
mib = size / 1048576
print("| measure | figure |")
print("|---|---|")
print(f"| file in the portfolio | {mib:.0f} MiB |")
print(f"| plain read of the stored file (cat) | {read_s:.2f} s, {mib / read_s:.0f} MiB/s |")
print(f"| offline ZIP through the API | {export_s:.2f} s, {zip_bytes / 1048576 / export_s:.0f} MiB/s, {zip_bytes / 1048576:.0f} MiB |")
print(f"| server RSS before → peak during | {before / 1024:.1f} MiB → {peak / 1024:.1f} MiB (growth {(peak - before) / 1024:.1f} MiB) |")
print(f"| `eportfolio export verify` | {verify_s:.2f} s: {verified} |")
PY
