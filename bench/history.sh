# bench/run --history: the queue's cost against its stored history. Sourced by bench/run after
# its PostgreSQL and helpers are up; see bench/README.md, "Stored history".
#
# Four databases: the plain jobs table and the table hash-partitioned by project (8
# partitions), each empty and filled with ROWS finished webhook jobs, every one pushed to a route
# with its delivery and its attempt, as months of traffic leave them under a 20-day retention:
# the newest tenth ended within the last 20 days and keeps its 2-4 KB payload, the rest ended up
# to 200 days ago and were pruned 20 days after. First, on the filled plain table, a REPEATABLE
# READ transaction held open while webhooks come and go (bench/history held); then against each
# database, in this one run: ingestion (wrk, as bench/run measures it) and a push drain
# (bench/history drain); last, ingestion into the filled plain table while the gateway prunes.
ROWS=${BENCH_HISTORY_ROWS:-20000000}
DRAIN_EVENTS=20000
HELD_PHASES="60 120 60"
HELD_RATE=600
if $SMOKE; then
  ROWS=200000
  DRAIN_EVENTS=1000
  HELD_PHASES="5 10 5"
fi
CHUNK=$((ROWS < 1000000 ? ROWS : 1000000))
RECENT=$((ROWS / 10))
HISTORY_BIN="$BUILD/bench/history"

history_config() {  # history_config DATABASE [EXTRA]: the gateway's, as bench/run's
  config "$1"
  [ -z "${2:-}" ] || echo "$2"
}

# Jobs g in [FROM, FROM + COUNT) of ROWS, ended in order over 200 days up to now: ids as the
# gateway makes them (the millisecond first), keys webhook:evt_hist_<g>, a delivery to route
# "default" and one attempt each. `payload` rows keep a 2-4 KB payload; the others are pruned.
fill() {  # fill DATABASE FROM COUNT payload|pruned
  psql_ -d "$1" <<SQL
CREATE TEMP TABLE chunk AS
SELECT g, t,
       (left(h, 8) || '-' || substr(h, 9, 4) || '-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid AS id
FROM generate_series($2, $2 + $3 - 1) g,
     LATERAL (SELECT now() - interval '200 days' + (interval '200 days' * (g::float8 / $ROWS)) AS t) x,
     LATERAL (SELECT lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') AS h) y;
INSERT INTO jobs (id, project_id, idempotency_key, type, payload, content_type, source, event_id,
                  status, attempts, max_attempts, attempt_allowance, run_at, created_at,
                  updated_at, completed_at, pushed, pruned_at)
SELECT c.id, 'shop', 'webhook:evt_hist_' || c.g, 'stripe.invoice.paid',
       CASE WHEN '$4' = 'payload' THEN convert_to('{"id":"evt_hist_' || c.g ||
         '","object":"event","type":"invoice.paid","data":{"object":{"description":"' ||
         left(p.text, 2000 + c.g % 2000) || '"}}}', 'UTF8') ELSE ''::bytea END,
       'application/json', 'stripe', 'evt_hist_' || c.g, 'succeeded', 1, 25, 25, c.t, c.t, c.t,
       c.t, true, CASE WHEN '$4' = 'pruned' THEN c.t + interval '20 days' END
FROM chunk c, (SELECT string_agg(md5(i::text || '$2'), '') AS text
               FROM generate_series(1, 125) i) p;
INSERT INTO deliveries (project_id, job_id, route, source, status, attempts, attempt_allowance,
                        max_attempts, run_at, created_at, updated_at, completed_at)
SELECT 'shop', id, 'default', 'stripe', 'succeeded', 1, 25, 25, t, t, t, t FROM chunk;
INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms, status_code,
                      response)
SELECT 'shop', id, 'default', 1, t, 40, 200, CASE WHEN '$4' = 'payload' THEN '{}' END FROM chunk;
SQL
}

# Bytes of the three tables with their indexes (TOAST included), or of their indexes alone.
table_bytes() {  # table_bytes DATABASE [pg_indexes_size]
  psql_ -d "$1" -c "SELECT sum(${2:-pg_total_relation_size}(c.oid)) FROM pg_class c WHERE c.relkind = 'r' AND (c.relname IN ('jobs', 'deliveries', 'attempts') OR c.relname LIKE 'jobs\_p%')"
}

fill_database() {  # fill_database DATABASE: ROWS jobs; records the bytes per million
  local from=1 began=$SECONDS pruned_bytes n
  while [ $from -le $((ROWS - RECENT)) ]; do
    n=$(( CHUNK < ROWS - RECENT - from + 1 ? CHUNK : ROWS - RECENT - from + 1 ))
    fill "$1" $from $n pruned
    from=$((from + n))
  done
  pruned_bytes=$(table_bytes "$1")
  while [ $from -le "$ROWS" ]; do
    n=$(( CHUNK < ROWS - from + 1 ? CHUNK : ROWS - from + 1 ))
    fill "$1" $from $n payload
    from=$((from + n))
  done
  psql_ -d "$1" -c "VACUUM ANALYZE jobs" -c "VACUUM ANALYZE deliveries" -c "VACUUM ANALYZE attempts"
  psql_ -c CHECKPOINT
  local all
  all=$(table_bytes "$1")
  record "fill-$1" "seconds=$((SECONDS - began)) pruned_mb_per_million=$(calc "$pruned_bytes / ($ROWS - $RECENT) / 1.048576") payload_mb_per_million=$(calc "($all - $pruned_bytes) / $RECENT / 1.048576") index_mb_per_million=$(calc "$(table_bytes "$1" pg_indexes_size) / $ROWS / 1.048576") total_gb=$(calc "$all / 1073741824")"
}

# Ingestion, as bench/run measures the gateway, RUNS times against DATABASE.
ingest() {  # ingest DATABASE LABEL [CONFIG_EXTRA]
  local db=$1 label=$2 run line stored since
  history_config "$db" "${3:-}" > "$WORK/$label.yaml"
  since=$(psql_ -d "$db" -c "SELECT now()")
  "$BIN" serve --config "$WORK/$label.yaml" > "$WORK/$label.log" 2>&1 &
  local gw=$!
  PIDS+=("$gw")
  wait_for_port "$GATEWAY_PORT"
  for run in $(seq "$RUNS"); do
    line=$(drive stripe.lua "$GATEWAY_PORT" /webhooks/stripe "$label$run" mixed "" "$gw")
    stored=($(rows_of "$db" "$label$run"))
    record "$label" "$line rows=${stored[0]} distinct=${stored[1]}"
  done
  kill -TERM "$gw"
  wait "$gw" || true
  # Counted in the table, where the work is, rather than from the log.
  [ -z "${3:-}" ] ||
    record "$label-pruned" "payloads=$(psql_ -d "$db" -c "SELECT count(*) FROM jobs WHERE pruned_at >= '$since'")"
  psql_ -c CHECKPOINT
}

drain() {  # drain DATABASE LABEL
  FLARE_BINARY="$BIN" "$HISTORY_BIN" drain "host=$WORK dbname=$1 user=postgres" "$DRAIN_EVENTS" |
    sed -n "s/^DRAIN/$2/p" >> "$RESULTS"
  psql_ -c CHECKPOINT
}

drain_rate() {  # drain_rate DATABASE -> deliveries/s of its drain
  local d
  d=$(grep "^drain-$1 " "$RESULTS")
  calc "$(field "$d" deliveries) / $(field "$d" seconds)"
}

echo "==> stored history: $ROWS finished jobs, $RECENT of them with payloads"
for db in plain plainfull part partfull; do psql_ -c "CREATE DATABASE $db"; done
for db in plain plainfull; do
  history_config $db > "$WORK/$db.yaml"
  "$BIN" migrate --config "$WORK/$db.yaml" >/dev/null
done
for db in part partfull; do
  history_config $db | sed 's/^database: {/database: { partitions: 8,/' > "$WORK/$db.yaml"
  "$BIN" migrate --config "$WORK/$db.yaml" >/dev/null
done
fill_database plainfull
fill_database partfull

echo "==> plainfull: a REPEATABLE READ transaction held open (phases $HELD_PHASES s, $HELD_RATE webhooks/s)"
FLARE_BINARY="$BIN" "$HISTORY_BIN" held "host=$WORK dbname=plainfull user=postgres" \
  $HELD_PHASES "$HELD_RATE" > "$WORK/held.out"
psql_ -c CHECKPOINT

for db in plain plainfull part partfull; do
  echo "==> $db: ingestion and a drain of $DRAIN_EVENTS events"
  ingest $db "h$db"
  drain $db "drain-$db"
done

echo "==> plainfull: ingestion while the gateway prunes (payload_days: 1)"
ingest plainfull hprune "retention: { payload_days: 1, interval_seconds: 10 }"


echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); PostgreSQL $(psql_ -c 'SHOW server_version'), fsync on, synchronous_commit on, shared_buffers $(psql_ -c 'SHOW shared_buffers')"
echo "stored history: $ROWS finished jobs with a delivery and an attempt each, $RECENT with 2-4 KB payloads"
for db in plainfull partfull; do
  line=$(grep "^fill-$db " "$RESULTS")
  echo "  $db: filled in $(field "$line" seconds) s, $(field "$line" total_gb) GiB; MiB per million events (tables and indexes): pruned $(field "$line" pruned_mb_per_million), with payload $(field "$line" payload_mb_per_million); the indexes alone $(field "$line" index_mb_per_million), pruned or not"
done
echo
printf '%-30s %10s %8s %9s %12s %16s\n' "layout" req/s p99_ms p99.9_ms "ratio/empty" "drain deliv/s"
for pair in "plain:table, empty" "plainfull:table, $ROWS jobs" "part:partitioned, empty" "partfull:partitioned, $ROWS jobs"; do
  db=${pair%%:*}
  base=${db%full}
  printf '%-30s %10s %8s %9s %12s %16s\n' "${pair#*:}" "$(rate "h$db" requests)" \
    "$(calc "$(of "h$db" p99) / 1000")" "$(calc "$(of "h$db" p999) / 1000")" \
    "$(ratio "$(rate "h$db" requests)" "$(rate "h$base" requests)")" \
    "$(drain_rate "$db")"
done
echo "drain ratio, $ROWS jobs / empty: table $(ratio "$(drain_rate plainfull)" "$(drain_rate plain)"), partitioned $(ratio "$(drain_rate partfull)" "$(drain_rate part)")"
echo "ingestion while pruning (table, $ROWS jobs): $(rate hprune requests) req/s, p99 $(calc "$(of hprune p99) / 1000") ms = $(ratio "$(rate hprune requests)" "$(rate hplainfull requests)") of without; $(field "$(grep '^hprune-pruned ' "$RESULTS")" payloads) payloads pruned meanwhile"
echo
echo "held REPEATABLE READ transaction (table, $ROWS jobs; $HELD_RATE webhooks/s, half pushed, half pulled through the API):"
grep '^HELDSUM' "$WORK/held.out" | sed 's/^HELDSUM /  /'
echo "every 10 s:"
grep '^HELD ' "$WORK/held.out" | sed 's/^HELD /  /'
$SMOKE && echo "(smoke mode: a small history and short runs; the figures only show the command works)"

status=0
while read -r system line; do
  case $system in h*) ;; *) continue ;; esac
  [ "$(field "$line" rows)" = "" ] && continue
  if [ "$(field "$line" non2xx)" != 0 ] || [ "$(field "$line" rows)" != "$(field "$line" distinct)" ] ||
     [ "$(field "$line" rows)" -lt "$(field "$line" accepted)" ]; then
    echo "FAILED: $system: $line"
    status=1
  fi
done < "$RESULTS"
exit $status
