#!/bin/sh
# Entry point of the ecom-stand-in/cassandra:5.0 image, modelled on the official image's for
# what Compose files use. `cassandra -f` (the default command; a first argument starting with
# "-" gets it prepended, as there) writes /etc/cassandra/cassandra.yaml and
# cassandra-rackdc.properties from the environment and replaces itself with the JVM, run as
# user cassandra in the foreground so that it receives `docker stop`'s SIGTERM. Any other
# command (cqlsh, nodetool, bash) runs as given.
#
# Environment, as in the official image:
#   CASSANDRA_CLUSTER_NAME      default "Test Cluster"
#   CASSANDRA_LISTEN_ADDRESS    default: this container's address (`hostname -i`)
#   CASSANDRA_BROADCAST_ADDRESS default: the listen address
#   CASSANDRA_RPC_ADDRESS       default 0.0.0.0
#   CASSANDRA_BROADCAST_RPC_ADDRESS default: the broadcast address
#   CASSANDRA_SEEDS             comma-separated; default: the broadcast address
#   CASSANDRA_NUM_TOKENS        default 16 (the 5.0 cassandra.yaml's). Tokens are random: the
#                               yaml's allocate_tokens_for_local_replication_factor is left
#                               out, since that allocator waits 30 s for schema on a lone seed
#   CASSANDRA_ENDPOINT_SNITCH   default SimpleSnitch
#   CASSANDRA_DC, CASSANDRA_RACK  default dc1, rack1 (read by GossipingPropertyFileSnitch)
#   MAX_HEAP_SIZE               default 1G here (the official formula would take 1/4 of RAM)
#   HEAP_NEWSIZE                accepted and ignored: with G1 (Cassandra 5.0 on JDK 17), as
#                               in cassandra-env.sh, no young generation size is set
#   JVM_EXTRA_OPTS              appended to the JVM options, e.g.
#                               "-Dcassandra.ring_delay_ms=3000" for a quick multi-node start
set -eu

conf=${CASSANDRA_CONF:-/etc/cassandra}  # set in the image, as in the official one

fail() {
  echo "docker-entrypoint.sh: $1" >&2
  exit 2
}

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- cassandra -f "$@"
fi
if [ "$1" != cassandra ]; then
  exec "$@"
fi
shift
for option in "$@"; do
  case $option in
    -f | -R) ;;  # always in the foreground; never as root
    *) fail "unsupported cassandra option: $option (the stand-in supports -f and -R)" ;;
  esac
done

own_address() {
  for address in $(hostname -i); do
    case $address in 127.* | ::1) ;; *) echo "$address"; return ;; esac
  done
  fail "no address from \`hostname -i\` other than loopback"
}

yaml_quote() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

listen=${CASSANDRA_LISTEN_ADDRESS:-auto}
if [ "$listen" = auto ]; then listen=$(own_address); fi
broadcast=${CASSANDRA_BROADCAST_ADDRESS:-$listen}
if [ "$broadcast" = auto ]; then broadcast=$(own_address); fi
broadcast_rpc=${CASSANDRA_BROADCAST_RPC_ADDRESS:-$broadcast}
if [ "$broadcast_rpc" = auto ]; then broadcast_rpc=$(own_address); fi
seeds=${CASSANDRA_SEEDS:-$broadcast}
num_tokens=${CASSANDRA_NUM_TOKENS:-16}
case $num_tokens in '' | *[!0-9]*) fail "CASSANDRA_NUM_TOKENS must be a number" ;; esac
heap=${MAX_HEAP_SIZE:-1G}

cat > "$conf/cassandra.yaml" <<YAML
# Written by docker-entrypoint.sh on every start.
cluster_name: $(yaml_quote "${CASSANDRA_CLUSTER_NAME:-Test Cluster}")
num_tokens: $num_tokens
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: $(yaml_quote "${CASSANDRA_ENDPOINT_SNITCH:-SimpleSnitch}")
listen_address: $(yaml_quote "$listen")
broadcast_address: $(yaml_quote "$broadcast")
rpc_address: $(yaml_quote "${CASSANDRA_RPC_ADDRESS:-0.0.0.0}")
broadcast_rpc_address: $(yaml_quote "$broadcast_rpc")
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters: [{seeds: $(yaml_quote "$seeds")}]
commitlog_sync: periodic
commitlog_sync_period: 10000ms
disk_access_mode: standard
storage_compatibility_mode: NONE
auto_snapshot: false
data_file_directories: [/var/lib/cassandra/data]
commitlog_directory: /var/lib/cassandra/commitlog
hints_directory: /var/lib/cassandra/hints
saved_caches_directory: /var/lib/cassandra/saved_caches
cdc_raw_directory: /var/lib/cassandra/cdc_raw
YAML

printf 'dc=%s\nrack=%s\nprefer_local=true\n' \
  "${CASSANDRA_DC:-dc1}" "${CASSANDRA_RACK:-rack1}" > "$conf/cassandra-rackdc.properties"

as_cassandra=""
if [ "$(id -u)" = 0 ]; then
  find /var/lib/cassandra /var/log/cassandra "$conf" ! -user cassandra -exec chown cassandra:cassandra '{}' +
  as_cassandra="setpriv --reuid=cassandra --regid=cassandra --init-groups"
fi

# shellcheck disable=SC2086  # as_cassandra and JVM_EXTRA_OPTS are lists of words
exec $as_cassandra java @"$conf/jvm17.options" \
  "-Xms$heap" "-Xmx$heap" -XX:+ExitOnOutOfMemoryError \
  "-Dcassandra.config=file://$conf/cassandra.yaml" \
  -Dcassandra.storagedir=/var/lib/cassandra \
  -Dcassandra.logdir=/var/log/cassandra \
  "-Dlogback.configurationFile=$conf/logback.xml" \
  -Dcassandra-foreground=yes \
  -Dcassandra.jmx.local.port=7199 \
  -Dcassandra.skip_wait_for_gossip_to_settle=0 \
  -Dcassandra.memtable_row_overhead_computation_step=100 \
  -Dcassandra.shutdown_announce_in_ms=0 \
  ${JVM_EXTRA_OPTS:-} \
  -cp "$conf:/opt/cassandra/lib/*" \
  org.apache.cassandra.service.CassandraDaemon
