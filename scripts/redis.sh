#!/usr/bin/env bash
# Make sure a Redis answers on 127.0.0.1:6379 (the tests and the servers' --redis-url
# default): start a local redis-server there, without persistence and daemonized, when
# none answers. Says which it was.
set -euo pipefail
ping() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ping; then
    echo "redis: already answering on 127.0.0.1:6379"
    exit 0
fi
redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes
for _ in $(seq 1 50); do
    if ping; then
        echo "redis: started redis-server on 127.0.0.1:6379 (no persistence)"
        exit 0
    fi
    sleep 0.1
done
echo "redis: started redis-server, but nothing answers on 127.0.0.1:6379" >&2
exit 1
