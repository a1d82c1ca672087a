# bench/run --backdoor: how fast stored jobs leave, against the Node.js job queues on the same
# PostgreSQL. Sourced by bench/run after its PostgreSQL and helpers are up (alone, or after the
# smoke run's ingestion); sets BACKDOOR_STATUS. See bench/README.md, "The back door".
#
# Each run, each on a database of its own: a push drain (EVENTS webhooks stored, then pushed by
# a `worker` process to nginx `return 200`), two pull drains (EVENTS webhooks worked through the
# jobs API, completed in batches and one by one), and graphile-worker and pg-boss working as many jobs of the same payloads, as no-ops
# and as POSTs to the same nginx; last, the sustained pipeline (bench/backdoor sustained).
EVENTS=${BENCH_BACKDOOR_EVENTS:-200000}
PULLERS=8
PULL_MAX=100
STEP_SECONDS=20
STEPS=8
if $SMOKE; then
  EVENTS=2000
  STEP_SECONDS=2
  STEPS=2
fi
RECEIVER_PORT=${BENCH_RECEIVER_PORT:-18083}
BACKDOOR_BIN="$BUILD/bench/backdoor"

# The receiver: nginx answering 200 at once, keeping connections alive as long as they are used.
cat > "$WORK/receiver.conf" <<EOF
worker_processes 2;
pid $WORK/receiver.pid;
error_log $WORK/receiver-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/receiver-body;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$RECEIVER_PORT;
    client_max_body_size 1m;
    location / { return 200 '{}'; }
  }
}
EOF
nginx -c "$WORK/receiver.conf" -g 'daemon off;' &
RECEIVER=$!
PIDS+=("$RECEIVER")
wait_for_port "$RECEIVER_PORT"

fresh_database() {  # fresh_database NAME: created and migrated
  PGOPTIONS='-c client_min_messages=warning' psql_ -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  config "$1" > "$WORK/$1.yaml"
  "$BIN" migrate --config "$WORK/$1.yaml" >/dev/null
  psql_ -c CHECKPOINT
}

echo "==> the back door's peers (graphile-worker, pg-boss)"
QUEUES_READY=true
mkdir -p "$WORK/queues"
cp "$ROOT"/bench/peers/queues/{package.json,package-lock.json,queue.js} "$WORK/queues/"
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ] ||
   ! (cd "$WORK/queues" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/queues-npm.log" 2>&1); then
  # As for the ingestion peer: the smoke run checks our command, a full run needs the peers.
  $SMOKE || { echo "the peers need Node.js 20 and their npm packages"; cat "$WORK/queues-npm.log"; exit 1; }
  echo "    skipped: the peers need Node.js 20 and their npm packages"
  QUEUES_READY=false
fi

queue() {  # queue SYSTEM MODE: the peer works EVENTS jobs; records "<system>-<mode>"
  local db="q_$1_$2"
  PGOPTIONS='-c client_min_messages=warning' psql_ -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  local env=(PGHOST="$WORK" PGDATABASE="$db" PGUSER=postgres JOBS="$EVENTS"
             PUSH_URL="http://127.0.0.1:$RECEIVER_PORT/" PROCESSES="$(nproc)")
  local added line pg0 rc0 all0 node_pid
  added=$(env "${env[@]}" node "$WORK/queues/queue.js" "$1" add | grep '^QUEUEADD')
  psql_ -c CHECKPOINT
  pg0=$(tree_ticks "$PG_PID")
  rc0=$(tree_ticks "$RECEIVER")
  all0=$(machine_ticks)
  env "${env[@]}" node "$WORK/queues/queue.js" "$1" work "$2" > "$WORK/queue.out" &
  node_pid=$!
  wait "$node_pid"
  line=$(grep '^QUEUE ' "$WORK/queue.out")
  local secs pg rc all node
  secs=$(field "$line" seconds)
  pg=$(( $(tree_ticks "$PG_PID") - pg0 ))
  rc=$(( $(tree_ticks "$RECEIVER") - rc0 ))
  all=$(( $(machine_ticks) - all0 ))
  # The peer's processes have exited: what the rest of the machine did is theirs (and the
  # bench's polling).
  record "$1-$2" "$line add_per_s=$(field "$added" jobs_per_s) cpu_pg=$(calc "$pg / $TICKS / $secs") cpu_receiver=$(calc "$rc / $TICKS / $secs") cpu_peer=$(calc "($all - $pg - $rc) / $TICKS / $secs")"
}

# PostgreSQL alone writing the row versions a drain keeps (bench/ceilings/push.sql, pull.sql),
# on EVENTS webhooks stored as for the drains: what no front to the queue can beat on this
# machine. Four pgbench clients (more only wait on each other's locked rows), until every job
# succeeded; records "ceiling-<push|pull>" with the machine's busy CPU per job.
ceiling() {  # ceiling push|pull
  local source=pushed left=1 passes=0 pg0 all0 began secs
  [ "$1" = pull ] && source=pulled
  fresh_database bd_ceiling
  FLARE_BINARY="$BIN" "$BACKDOOR_BIN" store "host=$WORK dbname=bd_ceiling user=postgres" \
    "$EVENTS" "$source" "$RECEIVER_PORT"
  # pgbench's statements, unlike the gateway's, need the statistics autovacuum would gather.
  psql_ -d bd_ceiling -c ANALYZE -c CHECKPOINT
  pg0=$(tree_ticks "$PG_PID")
  all0=$(machine_ticks)
  began=$(date +%s.%N)
  while [ "$left" != 0 ]; do
    passes=$((passes + 1))
    [ "$passes" -le 20 ] || { echo "the $1 ceiling left $left jobs unfinished"; return 1; }
    as_postgres pgbench -n -h "$WORK" -c 4 -j 2 -t $((EVENTS / 400 + 1)) \
      -f "$ROOT/bench/ceilings/$1.sql" bd_ceiling >/dev/null
    left=$(psql_ -d bd_ceiling -c "SELECT count(*) FROM jobs WHERE status <> 'succeeded'")
  done
  secs=$(calc "$(date +%s.%N) - $began")
  record "ceiling-$1" "jobs_per_s=$(calc "$EVENTS / $secs") cpu_pg=$(calc "($(tree_ticks "$PG_PID") - $pg0) / $TICKS / $secs") us_per_job=$(calc "($(machine_ticks) - $all0) / $TICKS * 1000000 / $EVENTS")"
}

for run in $(seq "$RUNS"); do
  echo "==> back door, run $run: ceilings, PostgreSQL alone writing the drains' rows"
  ceiling push
  ceiling pull
  echo "==> back door, run $run: push drain of $EVENTS events"
  fresh_database bd_push
  FLARE_BINARY="$BIN" "$BACKDOOR_BIN" push "host=$WORK dbname=bd_push user=postgres" "$EVENTS" \
    "$RECEIVER_PORT" "$PG_PID" "$RECEIVER" | sed -n 's/^PUSHDRAIN/push-drain/p' >> "$RESULTS"
  for complete in batch each; do
    echo "==> back door, run $run: pull drain of $EVENTS events ($PULLERS pullers, claims of $PULL_MAX, completed in $complete)"
    fresh_database bd_pull
    FLARE_BINARY="$BIN" "$BACKDOOR_BIN" pull "host=$WORK dbname=bd_pull user=postgres" "$EVENTS" \
      "$PULLERS" "$PULL_MAX" "$complete" "$PG_PID" | sed -n "s/^PULLDRAIN/pull-$complete/p" >> "$RESULTS"
  done
  if $QUEUES_READY; then
    for system in graphile pgboss; do
      for mode in push noop; do
        echo "==> back door, run $run: $system, $mode, $EVENTS jobs"
        queue $system $mode
      done
    done
  fi
  echo "==> back door, run $run: sustained pipeline (steps of $STEP_SECONDS s)"
  fresh_database bd_pipe
  FLARE_BINARY="$BIN" "$BACKDOOR_BIN" sustained "host=$WORK dbname=bd_pipe user=postgres" \
    "$RECEIVER_PORT" "$STEP_SECONDS" "$STEPS" "$PG_PID" > "$WORK/sustained.out"
  sed -n 's/^STEP /step /p' "$WORK/sustained.out" | sed "s/^step /step run=$run /" >> "$RESULTS"
  # The highest webhook rate whose backlog stayed flat, against the ingest-only rate.
  best=$(grep "^step run=$run .*flat=1" "$RESULTS" | while read -r l; do field "$l" sent_per_s; done | sort -g | tail -1 || true)
  record sustained "ingest_only=$(field "$(grep '^INGESTONLY' "$WORK/sustained.out")" webhooks_per_s) flat=${best:-0}"
done
kill "$RECEIVER"

drain_of() {  # drain_of SYSTEM -> the median jobs/s
  case $1 in
    push-drain | pull-batch | pull-each)
      grep "^$1 " "$RESULTS" | while read -r l; do calc "$(field "$l" events) / $(field "$l" seconds)"; echo; done | median ;;
    *) of "$1" jobs_per_s ;;
  esac
}

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); PostgreSQL $(psql_ -c 'SHOW server_version'), fsync on, synchronous_commit on; Node.js $(node --version 2>/dev/null)"
echo "back door: $EVENTS jobs of 2-4 KB a drain, medians of $RUNS runs; receiver nginx return 200"
echo
printf '%-44s %10s %28s %s\n' "system" jobs/s "cpu system/pg/receiver/rest" "enqueue->delivery p50/p99 ms"
for drain in push pull; do
  printf '%-44s %10s %28s %s\n' "ceiling: PostgreSQL alone, $drain rows" "$(of ceiling-$drain jobs_per_s)" \
    "-/$(of ceiling-$drain cpu_pg)/-/-" "($(of ceiling-$drain us_per_job) us of CPU a job)"
done
printf '%-44s %10s %28s %s\n' "flare-gateway push drain (1 worker process)" "$(drain_of push-drain)" \
  "$(of push-drain cpu_worker)/$(of push-drain cpu_pg)/$(of push-drain cpu_receiver)/$(of push-drain cpu_rest)" \
  "$(of push-drain lat_p50_ms)/$(of push-drain lat_p99_ms)"
for complete in batch each; do
  printf '%-44s %10s %28s\n' "flare-gateway pull drain (API, complete $complete)" \
    "$(drain_of pull-$complete)" \
    "$(of pull-$complete cpu_gateway)/$(of pull-$complete cpu_pg)/-/$(of pull-$complete cpu_rest)"
done
if $QUEUES_READY; then
  for system in graphile pgboss; do
    for mode in push noop; do
      printf '%-44s %10s %28s\n' "$system $mode (added at $(of "$system-$mode" add_per_s)/s)" \
        "$(drain_of "$system-$mode")" \
        "$(of "$system-$mode" cpu_peer)/$(of "$system-$mode" cpu_pg)/$(of "$system-$mode" cpu_receiver)/-"
    done
  done
fi
echo
echo "every run of each part, as measured (the table above has their medians):"
grep -E '^(ceiling-|push-drain|pull-|graphile-|pgboss-|sustained)' "$RESULTS" | sed 's/^/  /'
echo
echo "sustained pipeline (webhooks in, pushes out at once), per run:"
grep '^step ' "$RESULTS" | sed 's/^step /  /'
INGEST_ONLY=$(of sustained ingest_only)
FLAT=$(of sustained flat)
echo
echo "ratios"
if $QUEUES_READY; then
  best_push=$(printf '%s\n' "$(drain_of graphile-push)" "$(drain_of pgboss-push)" | sort -g | tail -1)
  best_noop=$(printf '%s\n' "$(drain_of graphile-noop)" "$(drain_of pgboss-noop)" | sort -g | tail -1)
  echo "push drain / faster peer pushing:           $(ratio "$(drain_of push-drain)" "$best_push")"
  echo "pull drain / faster peer working no-ops:    $(ratio "$(drain_of pull-batch)" "$best_noop")"
fi
echo "push drain / its ceiling:                   $(ratio "$(drain_of push-drain)" "$(of ceiling-push jobs_per_s)")"
echo "pull drain / its ceiling:                   $(ratio "$(drain_of pull-batch)" "$(of ceiling-pull jobs_per_s)")"
echo "sustained pipeline / ingest-only:           $(ratio "$FLAT" "$INGEST_ONLY") ($FLAT of $INGEST_ONLY webhooks/s)"
$SMOKE && echo "(smoke mode: small drains and short steps; the figures only show the command works)"

BACKDOOR_STATUS=0
for system in ceiling-push ceiling-pull push-drain pull-batch pull-each sustained; do
  grep -q "^$system " "$RESULTS" || { echo "FAILED: no $system"; BACKDOOR_STATUS=1; }
done
