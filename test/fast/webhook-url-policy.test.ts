/** Which webhook URLs the server calls, with the host names resolved by a stand-in for DNS; and how many attempts the retry settings make. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deliveryAttempts } from '../../src/queue/webhook-queue.ts';
import type { LookupAddress } from 'node:dns';
import {
  addressRefusal,
  guardedLookup,
  refusedAddressCode,
  urlRefusal,
  type Resolver,
  type WebhookUrlPolicy,
} from '../../src/webhooks/url-policy.ts';

const defaults: WebhookUrlPolicy = { allowedHosts: null, allowPrivateAddresses: false };
const names: Record<string, string[]> = {
  'hooks.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  // A name with one public and one private address: a connection could be sent to either.
  'split.example.com': ['93.184.215.14', '10.0.0.7'],
  'v6-private.example.com': ['2606:2800:21f:cb07:6820:80da:af6b:8b2c', 'fd12:3456::1'],
};
const resolve: Resolver = async (host) => {
  const addresses = names[host];
  if (!addresses) throw Object.assign(new Error(`no such host ${host}`), { code: 'ENOTFOUND' });
  return addresses;
};

describe('the webhook URL policy', () => {
  it('refuses every non-public IPv4 and IPv6 range by default, and allows public addresses', () => {
    for (const address of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd00::abcd',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:192.168.0.1',
      '64:ff9b::a00:1',
    ]) {
      assert.match(addressRefusal(address, defaults) ?? '', /non-public address/, address);
      assert.equal(
        addressRefusal(address, { ...defaults, allowPrivateAddresses: true }),
        null,
        `${address} with WEBHOOK_ALLOW_PRIVATE_ADDRESSES`,
      );
    }
    for (const address of [
      '8.8.8.8',
      '93.184.215.14',
      '172.32.0.1',
      '192.169.0.1',
      '::ffff:8.8.8.8',
      '2606:4700::1111',
    ])
      assert.equal(addressRefusal(address, defaults), null, address);
  });

  it('checks every address a host name resolves to, so that one private address among public ones is refused', async () => {
    assert.equal(await urlRefusal('https://hooks.example.com/jobs?token=1', defaults, resolve), null);
    assert.match(
      (await urlRefusal('https://split.example.com/', defaults, resolve)) ?? '',
      /split\.example\.com resolves to 10\.0\.0\.7 is a loopback, private/,
    );
    assert.match((await urlRefusal('https://v6-private.example.com/', defaults, resolve)) ?? '', /fd12:3456::1/);
    assert.match(
      (await urlRefusal('https://nowhere.example.com/', defaults, resolve)) ?? '',
      /nowhere\.example\.com can't be resolved \(ENOTFOUND\)/,
    );
  });

  it('checks IP literals however the URL writes them, without a lookup', async () => {
    const noLookup: Resolver = async () => assert.fail('an IP literal is not looked up');
    for (const url of [
      'http://127.0.0.1:8080/',
      'http://2130706433/',
      'http://0x7f.0.0.1/',
      'http://[::1]/',
      'http://[::ffff:10.0.0.1]/',
    ]) {
      assert.match((await urlRefusal(url, defaults, noLookup)) ?? '', /non-public address/, url);
    }
    assert.equal(await urlRefusal('http://[2606:4700::1111]/', defaults, noLookup), null);
  });

  it('takes only http and https, without user names, and with an allow-list only its hosts', async () => {
    assert.match((await urlRefusal('ftp://hooks.example.com/', defaults, resolve)) ?? '', /scheme is ftp/);
    assert.match(
      (await urlRefusal('https://user:pass@hooks.example.com/', defaults, resolve)) ?? '',
      /user name or password/,
    );
    const listed: WebhookUrlPolicy = { allowedHosts: ['hooks.example.com', '::1'], allowPrivateAddresses: false };
    assert.equal(await urlRefusal('https://HOOKS.example.com/x', listed, resolve), null);
    assert.match(
      (await urlRefusal('https://split.example.com/', listed, resolve)) ?? '',
      /host split\.example\.com is not on this server's list/,
    );
    assert.match(
      (await urlRefusal('http://[::1]/', listed, resolve)) ?? '',
      /non-public address/,
      'the list does not lift the address rules',
    );
    assert.equal(await urlRefusal('http://[::1]/', { ...listed, allowPrivateAddresses: true }, resolve), null);
  });
});

/** What guardedLookup answers for `host`, asked as a connection asks (one address, or all of them). */
function lookUp(
  policy: WebhookUrlPolicy,
  host: string,
  all: boolean,
): Promise<{ error: NodeJS.ErrnoException | null; address: string | LookupAddress[] }> {
  return new Promise((resolve) =>
    guardedLookup(policy)(host, { all }, (error, address) => resolve({ error, address })),
  );
}

describe('the DNS lookup of a delivery', () => {
  it('refuses a connection to the non-public addresses a name resolves to, and passes them on where they are allowed', async () => {
    for (const all of [false, true]) {
      const refused = await lookUp(defaults, 'localhost', all);
      assert.equal(refused.error?.code, refusedAddressCode);
      assert.match(refused.error?.message ?? '', /^localhost resolves to (127\.0\.0\.1|::1) is a loopback/);
      const allowed = await lookUp({ ...defaults, allowPrivateAddresses: true }, 'localhost', all);
      assert.equal(allowed.error, null);
      if (all)
        assert.ok(
          Array.isArray(allowed.address) &&
            allowed.address.some((entry) => entry.address === '127.0.0.1' || entry.address === '::1'),
        );
      else assert.match(String(allowed.address), /^(127\.0\.0\.1|::1)$/);
    }
  });
});

describe('deliveryAttempts', () => {
  it('retries with doubling waits while the next retry starts within WEBHOOK_RETRY_FOR_SECONDS of the first attempt', () => {
    assert.equal(deliveryAttempts({ firstRetryMs: 1000, retryForSeconds: 0 }), 1, 'no retries');
    assert.equal(deliveryAttempts({ firstRetryMs: 1000, retryForSeconds: 1 }), 2, 'a retry after 1 s');
    assert.equal(deliveryAttempts({ firstRetryMs: 1000, retryForSeconds: 3 }), 3, 'retries after 1 and 3 s');
    assert.equal(deliveryAttempts({ firstRetryMs: 1000, retryForSeconds: 6 }), 3, 'the next would start at 7 s');
    // The defaults: 10 s, 20 s, … the 13th retry 10 × (2^13 − 1) s ≈ 22.8 h after the first attempt.
    assert.equal(deliveryAttempts({ firstRetryMs: 10_000, retryForSeconds: 86_400 }), 14);
  });
});
