# Shared by the benchmark scripts (sourced, not run): builds the release binary, starts it on a
# fresh data dir with its embedded database, and makes a learner enrolled on CC20 with an API
# token. Defines: bin, work, data, base, server, enrolment, token, make_recording, upload,
# rss_kib, seconds. Stops the server and removes the data dir on exit.
set -euo pipefail
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
upload() { # FILE TITLE -> HTTP status
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
    -F "metadata={\"title\":\"$2\",\"method\":\"product\",\"occurred_on\":\"2026-03-02\",\"criteria\":[\"1.4\"],\"declaration\":true,\"third_party_confirmed\":true};type=application/json" \
    -F "file=@$1;type=audio/wav" "$base/api/v1/enrolments/$enrolment/evidence"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
seconds() { python3 -c 'import time; print(time.time())'; }
