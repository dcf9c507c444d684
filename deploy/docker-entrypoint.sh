#!/bin/sh
# Entry point of the authbench image (Dockerfile). Replicas of one compose service share one
# command line, so nothing in it can tell them apart; their hostnames (the container id) can.
# Each replica reports its hostname as its instance id in GET /me, unless
# AUTHBENCH_INSTANCE_ID (the servers' --instance-id) is set or --instance-id is passed.
set -eu
: "${AUTHBENCH_INSTANCE_ID:=${HOSTNAME:-instance-0}}"
export AUTHBENCH_INSTANCE_ID
exec "$@"
