// The comparison peer: the usual Node.js webhook receiver, on every core (cluster), answering
// as the gateway does: 202 for a new event, 200 for a duplicate, 401 for a bad signature.
// Environment: PORT, PGHOST (a socket directory), PGDATABASE, STRIPE_WEBHOOK_SECRET.
'use strict';
const cluster = require('node:cluster');
const os = require('node:os');

if (cluster.isPrimary) {
  for (let i = 0; i < os.availableParallelism(); i++) cluster.fork();
  cluster.on('online', () => {
    if (Object.keys(cluster.workers).length === os.availableParallelism()) {
      console.log(`listening on http://127.0.0.1:${process.env.PORT}`);
    }
  });
} else {
  const fastify = require('fastify')({ logger: false, bodyLimit: 1048576 });
  const stripe = require('stripe')('sk_test_unused');
  const { Pool } = require('pg');
  const pool = new Pool({ user: 'postgres', max: 16 });
  const secret = process.env.STRIPE_WEBHOOK_SECRET;

  // constructEvent needs the raw bytes that were signed.
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => done(null, body));

  fastify.post('/webhooks/stripe', async (request, reply) => {
    let event;
    try {
      event = stripe.webhooks.constructEvent(request.body, request.headers['stripe-signature'], secret);
    } catch (e) {
      return reply.code(401).send({ error: { code: 'invalid_signature', message: e.message } });
    }
    const key = `webhook:${event.id}`;
    const inserted = await pool.query(
      `INSERT INTO jobs (project_id, idempotency_key, type, payload, content_type, source, event_id,
                         max_attempts, attempt_allowance)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 25, 25)
       ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING id`,
      ['shop', key, `stripe.${event.type}`, request.body, 'application/json', 'stripe', event.id]);
    if (inserted.rowCount === 1) {
      return reply.code(202).send({ status: 'accepted', job_id: inserted.rows[0].id, idempotency_key: key });
    }
    const existing = await pool.query(
      'SELECT id FROM jobs WHERE project_id = $1 AND idempotency_key = $2', ['shop', key]);
    return reply.code(200).send({ status: 'duplicate', job_id: existing.rows[0].id, idempotency_key: key });
  });

  fastify.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
}
