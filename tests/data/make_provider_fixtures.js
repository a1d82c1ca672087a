// Regenerates standardwebhooks_sdk.txt, svix_sdk.txt and shopify_sdk.txt here with the
// providers' official npm packages:
//   npm install standardwebhooks svix @shopify/shopify-api@13 && node make_provider_fixtures.js
// Each file is NAME=VALUE lines; the payload is one line of JSON. Each signature is checked by
// the package's own verifier (or a second helper of the same package) before it is written.
const fs = require('fs');
const path = require('path');

const version = (pkg) => {
  let dir = path.dirname(require.resolve(pkg));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'))).version;
};
const write = (name, fields) => {
  const text = Object.entries(fields).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
  fs.writeFileSync(path.join(__dirname, name), text);
};

// The Standard Webhooks specification's example secret and a Clerk-like event.
const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const payload = JSON.stringify({type: 'user.created', data: {id: 'user_2fixtureSDK', object: 'user'}});
// Now: the SDKs' verifiers check the timestamp against the clock, 5 minutes either way.
const timestamp = Math.floor(Date.now() / 1000);

{
  const {Webhook} = require('standardwebhooks');
  const wh = new Webhook(secret.slice('whsec_'.length));
  const id = 'msg_2fixtureStandardWebhooks';
  const signature = wh.sign(id, new Date(timestamp * 1000), payload);
  wh.verify(payload, {'webhook-id': id, 'webhook-timestamp': `${timestamp}`, 'webhook-signature': signature});
  write('standardwebhooks_sdk.txt', {sdk: `standardwebhooks ${version('standardwebhooks')}`,
    secret, id, timestamp, payload, signature});
}

{
  const {Webhook} = require('svix');
  const wh = new Webhook(secret);
  const id = 'msg_2fixtureSvix';
  const signature = wh.sign(id, new Date(timestamp * 1000), payload);
  wh.verify(payload, {'svix-id': id, 'svix-timestamp': `${timestamp}`, 'svix-signature': signature});
  write('svix_sdk.txt', {sdk: `svix ${version('svix')}`, secret, id, timestamp, payload, signature});
}

(async () => {
  const {createSHA256HMAC} = require('@shopify/shopify-api/runtime');
  const {getHmac} = require('@shopify/shopify-api/test-helpers');
  const shopifySecret = 'shpss_fixture_secret_0123456789';
  const order = JSON.stringify({id: 450789469, email: 'jon@example.com', total_price: '398.00'});
  const hmac = await createSHA256HMAC(shopifySecret, order);
  if (hmac !== getHmac(order, shopifySecret)) throw new Error('the SDK disagrees with itself');
  write('shopify_sdk.txt', {sdk: `@shopify/shopify-api ${version('@shopify/shopify-api')}`,
    secret: shopifySecret, payload: order, hmac});
})();
