// Regenerates tests/data/stripe_sdk.txt with Stripe's official Node SDK:
//   npm install stripe && node make_stripe_fixture.js > stripe_sdk.txt
// Each line is NAME=VALUE; the payload is one line of JSON.
const Stripe = require('stripe');
const stripe = new Stripe('sk_test_unused');
const secret = 'whsec_test_flare_fixture_secret';
const payload = JSON.stringify({
  id: 'evt_1PfixtureSDK0001', object: 'event', type: 'payment_intent.succeeded',
  data: {object: {id: 'pi_1', amount: 2000}}});
const timestamp = 1700000000;
const header = stripe.webhooks.generateTestHeaderString({payload, secret, timestamp});
// The SDK's own verifier accepts it, as of that timestamp.
const event = stripe.webhooks.constructEvent(payload, header, secret, 300, undefined, timestamp);
if (event.id !== 'evt_1PfixtureSDK0001') throw new Error('SDK did not verify its own header');
const sdk = require('fs').readFileSync(require.resolve('stripe').replace(/cjs.*$/, 'package.json'));
console.log(`sdk=stripe-node ${JSON.parse(sdk).version}`);
console.log(`secret=${secret}`);
console.log(`timestamp=${timestamp}`);
console.log(`payload=${payload}`);
console.log(`header=${header}`);
