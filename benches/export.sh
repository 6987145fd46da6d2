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
source benches/server.sh

make_recording "$work/big.wav" "$size_mib"
status=$(upload "$work/big.wav" "One large recording")
[ "$status" = 201 ] || { echo "upload answered $status"; tail -20 "$work/server.log"; exit 1; }
bytes=$(stat -c %s "$work/big.wav")
rm -f "$work/big.wav"

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
