#!/usr/bin/env bash
# xmcd_embedded_kafka.sh: `xmcd --embedded-kafka` end to end with kcat and the fixture plugin: the daemon
# starts the mock cluster in-process, publishes its address with --bootstrap-file, kcat produces keyed text
# records (two poison ones), kcat reads back every output and the dead letters with their headers, /metrics
# answers, SIGTERM exits 0. Needs kcat and curl (skipped with a message, rc 0, when absent).
set -euo pipefail
BUILD=${BUILD:-build}
XMCD=${XMCD_BIN:-$PWD/$BUILD/xmcd}
PLUGIN=$PWD/$BUILD/tests/plugins/upper_stage.so
command -v kcat >/dev/null || { echo "skip: kcat not installed"; exit 0; }
T=$(mktemp -d /tmp/xmcd-cli-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; grep -v event=stats "$T/xmcd.log" | tail -20; exit 1; }

# The /metrics port is picked below Linux's ephemeral range (32768+), where the mock's own sockets live; a port
# some other process holds is detected (event=http_failed) and another one tried.
start_xmcd() {
  PORT=$((20000 + RANDOM % 12000))
  rm -f "$T/bs"
  cat > "$T/xmcd.conf" <<CONF
group_id = "cli";
topics = { in = "in"; out = "out"; dlq = "dlq"; };
batch = { max_records = 50; max_wait_ms = 5; };
plugin = { path = "$PLUGIN"; config = { max_record_bytes = 100; }; };
stats = { interval_ms = 500; http_port = $PORT; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
  "$XMCD" -c "$T/xmcd.conf" --embedded-kafka --bootstrap-file "$T/bs" 2> "$T/xmcd.log" &
  PID=$!
  for _ in $(seq 100); do [ -s "$T/bs" ] && break; sleep 0.1; done
  [ -s "$T/bs" ] || fail "no bootstrap file"
  for _ in $(seq 300); do grep -q "event=assigned\|event=http_failed" "$T/xmcd.log" && break; sleep 0.1; done
}
for try in 1 2 3; do
  start_xmcd
  grep -q "event=http_failed" "$T/xmcd.log" || break
  echo "port $PORT taken (try $try), another one"
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
done
BS=$(cat "$T/bs")
grep -q "event=assigned" "$T/xmcd.log" || fail "never assigned"

{ for i in $(seq 1 500); do echo "k$i:item $i"; done; echo "kbad:BAD item"; echo "kbig:$(head -c 300 /dev/zero | tr '\0' x)"; } \
  | kcat -b "$BS" -P -t in -K:
for _ in $(seq 200); do
  n=$(kcat -b "$BS" -C -t out -e -q -f '%k\n' | wc -l)
  [ "$n" -ge 500 ] && break; sleep 0.1
done
[ "$n" -eq 500 ] || fail "expected 500 outputs, got $n"
# read everything first: grep -q closing the pipe early would fail kcat under pipefail
kcat -b "$BS" -C -t out -e -q -f '%k %s\n' > "$T/out"
grep -qx 'k7 none|ITEM 7' "$T/out" || fail "output k7 is not the upper-cased input"
kcat -b "$BS" -C -t dlq -e -q -f '%k %h\n' > "$T/dlq"
[ "$(wc -l < "$T/dlq")" -eq 2 ] || fail "expected 2 dead letters: $(cat "$T/dlq")"
grep -q '^kbad .*xmc.error.code=PLUGIN' "$T/dlq" || fail "kbad not dead-lettered with PLUGIN"
grep -q '^kbig .*xmc.error.code=TOO_LARGE' "$T/dlq" || fail "kbig not dead-lettered with TOO_LARGE"
grep -q 'xmc.source.topic=in,xmc.source.partition=' "$T/dlq" || fail "source headers missing"
if command -v curl >/dev/null; then
  curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/metrics" || fail "no /metrics"
  grep -q '^xmcd_records_consumed_total 502$' "$T/metrics" || fail "metrics: $(grep consumed "$T/metrics")"
  grep -q '^xmcd_dead_letters_committed_total 2$' "$T/metrics" || fail "metrics dead letters"
  # consumer lag: every record consumed, so it falls to 0 once the watermarks are refreshed
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/metrics" || true
    grep -q '^xmcd_consumer_lag_records 0$' "$T/metrics" && break; sleep 0.1
  done
  grep -q '^xmcd_consumer_lag_records 0$' "$T/metrics" || fail "lag: $(grep lag "$T/metrics")"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")
  [ "$code" = 405 ] || fail "POST /metrics answered $code, not 405"
  # a client that connects and sends nothing is dropped (after 10 s), not held for ever
  exec 3<>"/dev/tcp/127.0.0.1/$PORT"
  idle=0; timeout 25 cat <&3 > /dev/null || idle=$?
  exec 3<&-
  [ "$idle" = 0 ] || fail "an idle /metrics client was not dropped within 25 s"
fi
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
PID=
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM"
grep -q "event=stopped exit=0" "$T/xmcd.log" || fail "no clean stop"
echo "ok: 500 outputs, 2 dead letters, metrics, clean SIGTERM"
