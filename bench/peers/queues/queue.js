// The job-queue peer: how fast the Node.js job queues a user would pick deliver the same jobs as
// the gateway, on the same PostgreSQL, each tuned the way its own documentation says to tune it
// for throughput, so the comparison is against their best and not their defaults.
// - graphile-worker 0.17.3: the settings of its performance page
//   (https://worker.graphile.org/docs/performance, "Batching"): concurrentJobs 24, maxPoolSize 25,
//   localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0; polling left at its default
//   since LISTEN/NOTIFY wakes the pool when jobs arrive.
// - pg-boss 10: work() per its API docs (docs/api/workers.md of the 10.x tags): each work() call
//   adds one polling loop, so two per process let one fetch while the other works; batchSize 250,
//   so a round trip fetches or completes many jobs; the smallest pollingIntervalSeconds allowed
//   (0.5). A loop sleeps out the polling interval even after a full batch, which alone would cap
//   a loop at 2 batches a second, so a full batch calls notifyWorker(id), the documented way to
//   skip that sleep, as anyone draining a backlog would. The handler resolving completes the
//   batch in one statement.
//
// node queue.js graphile|pgboss add            schema, then JOBS jobs in batches of 1,000
//   prints "QUEUEADD system=S jobs=N seconds=S jobs_per_s=X"
// node queue.js graphile|pgboss work noop|push PROCESSES worker processes until every job is done
//   prints "QUEUE system=S mode=M jobs=N seconds=S jobs_per_s=X failed=F"
// Environment: PGHOST (socket directory), PGDATABASE, PGUSER, JOBS, PUSH_URL, PROCESSES (2).
'use strict';
const { fork } = require('node:child_process');
const http = require('node:http');

const JOBS = Number(process.env.JOBS);
const PROCESSES = Number(process.env.PROCESSES || 2);
const ADD_BATCH = 1000;
const DEADLINE_MS = 600 * 1000;
const TASK = 'deliver';
const QUEUE = 'bench';

const GRAPHILE = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
};
const PGBOSS = { subscriptions: 2, batchSize: 250, pollingIntervalSeconds: 0.5 };
// The same number of connections to the receiver from either queue: graphile's concurrency.
const SOCKETS = GRAPHILE.concurrentJobs;
// graphile's default is 25 attempts with exponential backoff; pg-boss gets the same policy
// rather than its default of 2 immediate retries, so a short receiver hiccup fails neither run.
const PGBOSS_QUEUE = { retryLimit: 24, retryDelay: 1, retryBackoff: true };

// The bytes the gateway's own benchmark sends for event n.
function eventBody(id, n) {
  const len = 2000 + (n * 7919) % 2000;
  const pad = [];
  for (let i = 0; i < len; i++) pad.push(i % 7 === 0 ? String.fromCharCode(97 + (n + i) % 26) : 'x');
  return '{"id":"' + id + '","object":"event","type":"invoice.paid","data":{"object":{"amount":1200,"description":"' + pad.join('') + '"}}}';
}

// Hands `add` the JOBS jobs ADD_BATCH at a time, each made by `make` from its payload.
async function inBatches(make, add) {
  for (let from = 0; from < JOBS; from += ADD_BATCH) {
    const batch = [];
    for (let n = from; n < Math.min(from + ADD_BATCH, JOBS); n++) {
      batch.push(make(eventBody(`evt_q_${n}`, n)));
    }
    await add(batch);
  }
}

function connection() {
  return { host: process.env.PGHOST, database: process.env.PGDATABASE, user: process.env.PGUSER };
}

function quietGraphileLogger() {
  const { Logger } = require('graphile-worker');
  // Its info level logs a line per job, which would be a benchmark of the console; and only the
  // first line of each error, or a receiver that is down fills the log with stacks.
  return new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') console.error(`graphile ${level}: ${message.split('\n')[0]}`);
  });
}

function pgbossInstance() {
  const PgBoss = require('pg-boss');
  const boss = new PgBoss(connection());
  boss.on('error', (e) => console.error('pg-boss error:', e.message || e));
  return boss;
}

function seconds(fromNs) {
  return Number(process.hrtime.bigint() - fromNs) / 1e9;
}

async function add(system) {
  let began;
  if (system === 'graphile') {
    const { makeWorkerUtils } = require('graphile-worker');
    const utils = await makeWorkerUtils({ logger: quietGraphileLogger() });
    try {
      await utils.migrate();
      began = process.hrtime.bigint();
      await inBatches((body) => ({ identifier: TASK, payload: { body } }), (specs) => utils.addJobs(specs));
    } finally {
      await utils.release();
    }
  } else {
    const boss = pgbossInstance();
    await boss.start();
    try {
      if (!(await boss.getQueue(QUEUE))) await boss.createQueue(QUEUE, PGBOSS_QUEUE);
      began = process.hrtime.bigint();
      await inBatches((body) => ({ name: QUEUE, data: { body } }), (jobs) => boss.insert(jobs));
    } finally {
      await boss.stop({ graceful: false });
    }
  }
  const s = seconds(began);
  console.log(`QUEUEADD system=${system} jobs=${JOBS} seconds=${s.toFixed(3)} jobs_per_s=${(JOBS / s).toFixed(0)}`);
}

// What a Node user writes instead of a push worker: POST the payload, and throw on anything but
// a 2xx so the queue retries the job.
function makePoster() {
  const url = new URL(process.env.PUSH_URL);
  const agent = new http.Agent({ keepAlive: true, maxSockets: SOCKETS });
  return (body) => new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      timeout: 30000,
    }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode >= 200 && res.statusCode < 300) resolve();
        else reject(new Error(`POST answered ${res.statusCode}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('POST timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

// Failures go to the parent as they happen, so a child that dies still had them counted.
function reportFailures(count) {
  if (count > 0) process.send({ failed: count });
}

async function child(system, mode) {
  const post = mode === 'push' ? makePoster() : null;
  let stop;
  if (system === 'graphile') {
    const { run } = require('graphile-worker');
    const taskList = {
      [TASK]: post
        ? async (payload) => {
          try {
            await post(payload.body);
          } catch (e) {
            reportFailures(1);
            throw e;
          }
        }
        : async () => {},
    };
    const runner = await run({
      taskList,
      noHandleSignals: true,
      logger: quietGraphileLogger(),
      preset: { worker: GRAPHILE },
    });
    stop = () => runner.stop();
  } else {
    const boss = pgbossInstance();
    await boss.start();
    const { subscriptions, ...options } = PGBOSS;
    for (let i = 0; i < subscriptions; i++) {
      let id;
      const handler = async (jobs) => {
        if (jobs.length === options.batchSize && id) boss.notifyWorker(id);
        if (!post) return;
        const results = await Promise.allSettled(jobs.map((job) => post(job.data.body)));
        const failed = results.filter((r) => r.status === 'rejected');
        if (failed.length === 0) return;
        // Throwing fails the whole batch; completing the delivered ones first keeps the retry to
        // the jobs that failed (fail() only touches jobs still active).
        const delivered = jobs.filter((_, k) => results[k].status === 'fulfilled').map((job) => job.id);
        if (delivered.length) await boss.complete(QUEUE, delivered);
        reportFailures(failed.length);
        throw failed[0].reason;
      };
      id = await boss.work(QUEUE, options, handler);
    }
    stop = () => boss.stop({ graceful: true, wait: true });
  }
  // Orphaned workers would go on taking jobs from the next run.
  process.on('disconnect', () => process.exit(1));
  process.on('message', async (message) => {
    if (message !== 'stop') return;
    try {
      await stop();
      process.exit(0);
    } catch (e) {
      console.error('stopping:', e);
      process.exit(1);
    }
  });
}

// Whether any job is not yet completed, asked as the gateway's drain asks (bench/README.md note
// 53): a count of the whole table every poll cost PostgreSQL as much time a job as the queue's
// own statements. No job runs out of its 25 attempts within the deadline (graphile-worker waits
// e^n s after the nth failure, at most 6 attempts in 600 s; pg-boss, as configured here, 2^(n-1)
// s or more, at most 10), so the run's failed POSTs, counted by the workers, are what says a
// run went wrong.
async function pending(pool, system) {
  if (system === 'graphile') {
    // Completed jobs are deleted; any row left is a job to do. The first by the primary key (an
    // EXISTS would drop the order and scan the table, stepping over every deleted job's dead row).
    const { rows } = await pool.query('SELECT id FROM graphile_worker._private_jobs ORDER BY id LIMIT 1');
    return rows.length > 0;
  }
  // Waiting and retrying jobs have an index (state < 'active'), active ones none: they are looked
  // for only once none waits. One statement, so that a job failing back from active to retry
  // between two looks is not missed.
  const { rows: [r] } = await pool.query(
    `SELECT EXISTS (SELECT FROM pgboss.job WHERE name = $1 AND state < 'active')
       OR EXISTS (SELECT FROM pgboss.job WHERE name = $1 AND state = 'active') AS pending`, [QUEUE]);
  return r.pending;
}

async function work(system, mode) {
  if (mode === 'push' && !process.env.PUSH_URL) throw new Error('push needs PUSH_URL');
  const { Pool } = require('pg');
  const pool = new Pool({ ...connection(), max: 1 });
  const children = [];
  let failed = 0;
  let exited = null;
  const began = process.hrtime.bigint();
  for (let i = 0; i < PROCESSES; i++) {
    // Child stdout goes to our stderr: the one line on stdout is ours.
    const c = fork(__filename, ['--child', system, mode], { stdio: ['ignore', 2, 2, 'ipc'] });
    c.on('message', (m) => { if (m && m.failed) failed += m.failed; });
    c.on('exit', (code, signal) => { if (!c.stopping) exited = `worker exited early (${code ?? signal})`; });
    children.push(c);
  }
  try {
    for (;;) {
      if (exited) throw new Error(exited);
      if (!(await pending(pool, system))) break;
      if (Number(process.hrtime.bigint() - began) / 1e6 > DEADLINE_MS) {
        throw new Error(`jobs not all completed within ${DEADLINE_MS / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    for (const c of children) { c.stopping = true; c.kill('SIGKILL'); }
    await pool.end();
    throw e;
  }
  const s = seconds(began);
  await pool.end();
  const stopped = children.map((c) => new Promise((resolve) => {
    if (c.exitCode !== null) return resolve(c.exitCode);
    c.stopping = true;
    const kill = setTimeout(() => c.kill('SIGKILL'), 30000);
    c.on('exit', (code) => { clearTimeout(kill); resolve(code); });
    c.send('stop');
  }));
  const codes = await Promise.all(stopped);
  console.log(`QUEUE system=${system} mode=${mode} jobs=${JOBS} seconds=${s.toFixed(3)} ` +
    `jobs_per_s=${(JOBS / s).toFixed(0)} failed=${failed}`);
  if (codes.some((code) => code !== 0)) throw new Error(`a worker did not stop cleanly: ${codes}`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], args[2]);
  const [system, action, mode] = args;
  if (!['graphile', 'pgboss'].includes(system)) throw new Error('system must be graphile or pgboss');
  if (!(Number.isInteger(JOBS) && JOBS > 0)) throw new Error('JOBS must be a positive integer');
  if (action === 'add') return add(system);
  if (action === 'work' && ['noop', 'push'].includes(mode)) return work(system, mode);
  throw new Error('usage: queue.js graphile|pgboss add | work noop|push');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
