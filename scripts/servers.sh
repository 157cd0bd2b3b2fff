#!/usr/bin/env bash
# The real servers of the scale-out backends, on loopback, for the tests and for developers:
# a Redis Cluster of 3 masters + 3 replicas (the fingerprint index) and a PostgreSQL 15 server.
#
#   scripts/servers.sh start    start both (already running: reuse them); prints the export lines
#   scripts/servers.sh env      print the export lines only
#   scripts/servers.sh status   say what runs; exit status 0 only when both are up
#   scripts/servers.sh stop     stop both and delete their data
#
# Environment:
#   SOUNDMARK_SERVERS_DIR  where the data, logs and sockets live (default /tmp/soundmark-servers)
#   SOUNDMARK_REDIS_PORT   first Redis port; the cluster uses it and the next five (default 7000)
#   SOUNDMARK_PG_PORT      PostgreSQL's port (default 5433)
# Needs Debian's redis-server, redis-tools and postgresql (15) packages (.ci/run installs them).
# PostgreSQL refuses to run as root: as root the script runs it as the `postgres` user (runuser).
set -euo pipefail

DIR="${SOUNDMARK_SERVERS_DIR:-/tmp/soundmark-servers}"
REDIS_PORT="${SOUNDMARK_REDIS_PORT:-7000}"
PG_PORT="${SOUNDMARK_PG_PORT:-5433}"
PG_BIN="${SOUNDMARK_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DB=soundmark_test
REDIS_PORTS=()
for i in 0 1 2 3 4 5; do REDIS_PORTS+=($((REDIS_PORT + i))); done

die() { echo "servers.sh: $*" >&2; exit 1; }

as_pg() {  # run a PostgreSQL binary as a user it accepts
    if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

redis_up() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

cluster_ok() {  # every node reports the cluster as ok, and every replica is in sync with its master
    local p
    for p in "${REDIS_PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q "cluster_state:ok" || return 1
        if redis-cli -h 127.0.0.1 -p "$p" info replication 2>/dev/null | grep -q "^role:slave"; then
            redis-cli -h 127.0.0.1 -p "$p" info replication | grep -q "^master_link_status:up" || return 1
        fi
    done
}

pg_up() { as_pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

print_env() {
    echo "export SOUNDMARK_TEST_REDIS_URL=redis://127.0.0.1:${REDIS_PORTS[0]},127.0.0.1:${REDIS_PORTS[1]},127.0.0.1:${REDIS_PORTS[2]}"
    echo "export SOUNDMARK_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:${PG_PORT}/${PG_DB}"
}

start_redis() {
    command -v redis-server >/dev/null || die "redis-server is not installed (Debian: apt-get install redis-server redis-tools)"
    local p d
    for p in "${REDIS_PORTS[@]}"; do
        redis_up "$p" && continue
        d="$DIR/redis/$p"
        mkdir -p "$d"
        redis-server --port "$p" --bind 127.0.0.1 --protected-mode no --daemonize yes \
            --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 \
            --dir "$d" --pidfile "$d/redis.pid" --logfile "$d/redis.log" 9>&- \
            || die "redis-server on port $p did not start (see $d/redis.log)"
    done
    for _ in $(seq 100); do
        local all=1
        for p in "${REDIS_PORTS[@]}"; do redis_up "$p" || all=0; done
        [ "$all" = 1 ] && break
        sleep 0.1
    done
    for p in "${REDIS_PORTS[@]}"; do redis_up "$p" || die "redis on port $p does not answer (see $DIR/redis/$p/redis.log)"; done
    cluster_ok && return 0
    # Nodes that know no other node: a fresh set, make it a cluster (3 masters, 1 replica each).
    local known
    known=$(redis-cli -h 127.0.0.1 -p "${REDIS_PORTS[0]}" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')
    if [ "${known:-1}" = "1" ]; then
        local addrs=()
        for p in "${REDIS_PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
        redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/redis/create.log" 2>&1 \
            || die "redis-cli --cluster create failed (see $DIR/redis/create.log)"
    fi
    for _ in $(seq 300); do
        cluster_ok && return 0
        sleep 0.1
    done
    die "the Redis cluster on ports ${REDIS_PORTS[0]}..${REDIS_PORTS[5]} did not reach cluster_state:ok"
}

start_pg() {
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 is not installed at $PG_BIN (Debian: apt-get install postgresql)"
    local data="$DIR/pg/data" sock="$DIR/pg/run"
    if ! pg_up; then
        mkdir -p "$DIR/pg" "$sock"
        [ "$(id -u)" = "0" ] && chown postgres: "$DIR/pg" "$sock"
        if [ ! -f "$data/PG_VERSION" ]; then
            as_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-instructions >"$DIR/pg/initdb.log" 2>&1 \
                || die "initdb failed (see $DIR/pg/initdb.log)"
        fi
        as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/pg/server.log" -w -t 60 \
            -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1" start >/dev/null 9>&- \
            || die "PostgreSQL did not start on port $PG_PORT (see $DIR/pg/server.log)"
    fi
    local psql=(as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAq)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
        "${psql[@]}" -c "CREATE DATABASE $PG_DB" || die "could not create database $PG_DB"
    fi
}

stop_all() {
    local p
    for p in "${REDIS_PORTS[@]}"; do
        redis_up "$p" && redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
    if [ -f "$DIR/pg/data/PG_VERSION" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

status() {
    local rc=0 p
    if cluster_ok; then echo "redis cluster: ok (ports ${REDIS_PORTS[0]}..${REDIS_PORTS[5]})"; else
        echo "redis cluster: down"; rc=1
    fi
    if pg_up; then echo "postgresql: up (port $PG_PORT)"; else echo "postgresql: down"; rc=1; fi
    return $rc
}

with_lock() {  # one start/stop at a time (two test sessions may start the servers together);
    # the servers started get the lock's descriptor closed (9>&-), or they would hold the lock
    mkdir -p "$(dirname "$DIR")"
    exec 9>"$DIR.lock"
    flock 9
    "$@"
}

start_all() { start_redis && start_pg && print_env; }

case "${1:-}" in
    start) with_lock start_all ;;
    stop) with_lock stop_all ;;
    status) status ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
