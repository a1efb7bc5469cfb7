#!/usr/bin/env bash
# cluster.sh: Apache Kafka brokers for the real-broker tier: one ZooKeeper and N brokers on 127.0.0.1, all under DIR.
#
#   cluster.sh start DIR N     ZooKeeper + brokers 1..N (own id, port and log dir each); prints the bootstrap list
#                              (also DIR/bootstrap). N=1: replication 1 everywhere; N>=3: internal topics and new
#                              topics get replication 3 and min.insync.replicas 2
#   cluster.sh kill DIR I      kill -9 broker I (its data stays)
#   cluster.sh stop-broker DIR I   controlled shutdown of broker I
#   cluster.sh restart DIR I   start broker I again (same id, port, data) and wait until it is ready
#   cluster.sh quota DIR CLIENT_ID BYTES_PER_S   a producer byte-rate quota for one client.id (ConfigCommand)
#   cluster.sh stop DIR        every broker, then ZooKeeper (SIGTERM, SIGKILL after 20 s); nothing running: no-op
#
# Adapted from the kafka-broker.sh script beside the shared broker build (start/stop of one broker): the JVMs run under setsid so a
# test's process-group kill spares them, which is why every pid is written under DIR and stop must be called (the
# tier's trap does). Ports are chosen once at start and kept, so a restarted broker is found at the same address.
# Env: KAFKA_LIBS (the directory of the broker's jars: `make test-kafka` passes the Makefile's, which a user's
# clone can point anywhere), KAFKA_HEAP (-Xmx384m).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LIBS=${KAFKA_LIBS:-}
die() { echo "cluster.sh: $*" >&2; exit 1; }

need() {
    command -v java >/dev/null || die "java not found: the real-broker tier needs a JRE 17 (apt-get install openjdk-17-jre-headless)"
    [ -n "$LIBS" ] && [ -f "$LIBS/kafka_2.11-2.4.1.jar" ] ||
        die "no Kafka broker jars in '$LIBS': set KAFKA_LIBS to a directory holding kafka_2.11-2.4.1.jar and its dependencies (Kafka 2.4.1's libs/), or KAFKA_BOOTSTRAP=host:port to use a running cluster"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# a port nothing listens on (from /proc/net/tcp*: no Python or iproute2 needed)
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        grep -qi ":$(printf '%04X' "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return; }
    done
}
jopts() { echo "-Djava.library.path=$LIBS/native -Dorg.xerial.snappy.use.systemlib=true -Dlog4j.configuration=file:$1/log4j.properties"; }

# Starts broker I from its properties and waits until it says it started (and leads what it led, see below).
start_broker() {
    local dir=$1 i=$2 b=$1/b$2 n0 n
    n0=$(grep -c 'started (kafka.server.KafkaServer)' "$b/kafka.log" 2>/dev/null || true)
    # shellcheck disable=SC2046
    setsid java ${KAFKA_HEAP:--Xmx384m} -XX:+UseSerialGC $(jopts "$dir") -cp "$LIBS/*" \
        kafka.Kafka "$b/server.properties" >>"$b/kafka.log" 2>&1 </dev/null &
    echo $! >"$b/pid"
    for _ in $(seq 900); do
        # (the log may not exist for the first instants: the background shell opens it)
        n=$(grep -c 'started (kafka.server.KafkaServer)' "$b/kafka.log" 2>/dev/null || true)
        [ "${n:-0}" -gt "${n0:-0}" ] && return 0
        alive "$b/pid" || { echo "broker $i exited: $(grep -E 'ERROR|Exception' "$b/kafka.log" | tail -2)" >&2; return 2; }
        sleep 0.1
    done
    die "broker $i not ready in 90 s (see $b/kafka.log)"
}

start() {
    local dir=$1 n=$2 zp rf isr bs=""
    need
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    [ -s "$dir/bootstrap" ] && alive "$dir/zk.pid" && { cat "$dir/bootstrap"; return; }
    rf=1; isr=1; [ "$n" -ge 3 ] && { rf=3; isr=2; }
    cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=WARN
EOF
    zp=$(free_port)
    printf '%s\n' "dataDir=$dir/zk" "clientPort=$zp" "clientPortAddress=127.0.0.1" "admin.enableServer=false" \
        "4lw.commands.whitelist=ruok" >"$dir/zk.properties"
    # shellcheck disable=SC2046
    setsid java -Xmx128m -XX:+UseSerialGC $(jopts "$dir") -cp "$LIBS/*" org.apache.zookeeper.server.ZooKeeperServerMain \
        "$dir/zk.properties" >"$dir/zk.log" 2>&1 </dev/null &
    echo $! >"$dir/zk.pid"
    zk_ok() { (r=; exec 3<>"/dev/tcp/127.0.0.1/$zp" && echo ruok >&3 && read -r -t 2 -u 3 r; [ "$r" = imok ]) 2>/dev/null; }
    for _ in $(seq 300); do zk_ok && break; alive "$dir/zk.pid" || die "ZooKeeper exited: $(tail -3 "$dir/zk.log")"; sleep 0.1; done
    zk_ok || die "ZooKeeper not ready in 30 s (see $dir/zk.log)"
    for i in $(seq "$n"); do
        local b=$dir/b$i kp
        mkdir -p "$b"; kp=$(free_port)
        printf '%s\n' "broker.id=$i" "listeners=PLAINTEXT://127.0.0.1:$kp" "log.dirs=$b/data" \
            "zookeeper.connect=127.0.0.1:$zp" "num.partitions=4" "default.replication.factor=$rf" \
            "min.insync.replicas=$isr" "offsets.topic.replication.factor=$rf" "offsets.topic.num.partitions=4" \
            "transaction.state.log.replication.factor=$rf" "transaction.state.log.min.isr=$isr" \
            "transaction.state.log.num.partitions=4" "group.initial.rebalance.delay.ms=0" \
            "auto.create.topics.enable=false" "unclean.leader.election.enable=false" \
            "controlled.shutdown.enable=true" "log.segment.bytes=16777216" >"$b/server.properties"
        bs="$bs${bs:+,}127.0.0.1:$kp"
    done
    # brokers one after the other: on two cores, three JVMs starting at once take longer than in turn
    for i in $(seq "$n"); do start_broker "$dir" "$i" || die "broker $i did not start"; done
    echo "$n" >"$dir/brokers"
    echo "$bs" >"$dir/bootstrap"; cat "$dir/bootstrap"
}

stop_pid() { # SIGTERM (or $2), wait up to 20 s, then SIGKILL
    local f=$1 sig=${2:-TERM}
    if alive "$f"; then
        kill -s "$sig" "$(cat "$f")" 2>/dev/null || true
        for _ in $(seq 200); do alive "$f" || break; sleep 0.1; done
        alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null || true
        for _ in $(seq 50); do alive "$f" || break; sleep 0.1; done
    fi
    rm -f "$f"
}

stop() {
    local dir=$1 f
    [ -d "$dir" ] || return 0
    for f in "$dir"/b*/pid; do [ -e "$f" ] && stop_pid "$f"; done
    stop_pid "$dir/zk.pid"
    rm -f "$dir/bootstrap"
}

case ${1:-} in
    start) [ $# -eq 3 ] || die "usage: $0 start DIR N"; start "$2" "$3" ;;
    kill) [ $# -eq 3 ] || die "usage: $0 kill DIR I"; f=$2/b$3/pid; alive "$f" && kill -9 "$(cat "$f")"
        for _ in $(seq 50); do alive "$f" || break; sleep 0.1; done; rm -f "$f" ;;
    stop-broker) [ $# -eq 3 ] || die "usage: $0 stop-broker DIR I"; stop_pid "$2/b$3/pid" ;;
    # a broker killed -9 leaves its ZooKeeper registration until the session times out (6 s): a restart before
    # that exits with "node already exists", so it is tried again for up to 30 s
    restart) [ $# -eq 3 ] || die "usage: $0 restart DIR I"; need
        for try in $(seq 10); do
            alive "$2/b$3/pid" && exit 0
            start_broker "$(cd "$2" && pwd)" "$3" 2>/dev/null && exit 0
            tail -n 200 "$2/b$3/kafka.log" | grep -q 'node already exists' ||
                die "broker $3 did not restart: $(grep -E 'ERROR|Exception' "$2/b$3/kafka.log" | tail -2)"
            sleep 3
        done
        die "broker $3 did not restart in 10 tries" ;;
    stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
    quota) [ $# -eq 4 ] || die "usage: $0 quota DIR CLIENT_ID BYTES_PER_S"; need
        zp=$(sed -n 's/^clientPort=//p' "$2/zk.properties")
        java -Xmx128m -XX:+UseSerialGC -Dlog4j.configuration="file:$(cd "$2" && pwd)/log4j.properties" -cp "$LIBS/*" \
            kafka.admin.ConfigCommand --zookeeper "127.0.0.1:$zp" --alter --add-config "producer_byte_rate=$4" \
            --entity-type clients --entity-name "$3" ;;
    *) die "usage: $0 start DIR N | kill DIR I | stop-broker DIR I | restart DIR I | quota DIR CLIENT RATE | stop DIR" ;;
esac
