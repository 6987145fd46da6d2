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
source benches/server.sh

make_recording "$work/big.wav" "$size_mib"
bytes=$(stat -c %s "$work/big.wav")

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
