#!/usr/bin/env node
// server.js — s3rver for GenPulse's tests, with SigV4 signatures actually checked.
//
// s3rver 3.x parses V4 Authorization headers and presigned queries (and checks their dates
// and expiry) but never computes the signature, so a wrong secret would pass. This wrapper
// puts a verifier in front of its routes: header-signed requests and presigned URLs must
// carry a correct AWS4-HMAC-SHA256 signature for the known key pairs, else 403
// SignatureDoesNotMatch, as S3 answers. Written independently of src/infra/sign/sigv4.c so
// that the C signer is checked against a second implementation. The payload hash header is
// taken as sent (like s3rver, the body is not re-hashed). Two object names trigger injected
// failures for the tests of multipart error handling (see injected()).
//
// usage: node server.js --address 127.0.0.1 --port N --directory DIR [--bucket NAME]...
'use strict';

const crypto = require('crypto');
const S3rver = require('s3rver');

const KEYS = { S3RVER: 'S3RVER' }; // s3rver's built-in account

function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function decode(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
}

const sha256hex = s => crypto.createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s, 'utf8').digest();

function canonicalQuery(raw, skipSignature) {
  const pairs = [];
  for (const part of raw.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = decode(i < 0 ? part : part.slice(0, i));
    const v = decode(i < 0 ? '' : part.slice(i + 1));
    if (skipSignature && k === 'X-Amz-Signature') continue;
    pairs.push([rfc3986(k), rfc3986(v)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(p => p[0] + '=' + p[1]).join('&');
}

// Returns null when the signature is right, else [status, code, message].
function check(req) {
  const url = req.url;
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const query = {};
  for (const part of rawQuery.split('&')) {
    const i = part.indexOf('=');
    if (part) query[decode(i < 0 ? part : part.slice(0, i))] = decode(i < 0 ? '' : part.slice(i + 1));
  }
  const auth = req.headers['authorization'];
  let credential, signedHeaders, signature, amzDate, payload, presigned;
  if (auth) {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return null; // not V4 (s3rver deals with V2 and malformed headers)
    [, credential, signedHeaders, signature] = m;
    amzDate = req.headers['x-amz-date'];
    payload = req.headers['x-amz-content-sha256'] || '';
    presigned = false;
  } else if (query['X-Amz-Algorithm'] === 'AWS4-HMAC-SHA256') {
    credential = query['X-Amz-Credential'] || '';
    signedHeaders = query['X-Amz-SignedHeaders'] || '';
    signature = query['X-Amz-Signature'] || '';
    amzDate = query['X-Amz-Date'];
    payload = query['X-Amz-Content-Sha256'] || 'UNSIGNED-PAYLOAD';
    presigned = true;
  } else {
    return null;
  }
  const scopeParts = credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request')
    return [400, 'AuthorizationHeaderMalformed', 'bad credential scope'];
  const [accessKey, date, region, service] = scopeParts;
  const secret = KEYS[accessKey];
  if (secret === undefined)
    return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  if (!amzDate || amzDate.slice(0, 8) !== date)
    return [403, 'SignatureDoesNotMatch', 'date and credential scope disagree'];

  const path = rawPath.split('/').map(seg => rfc3986(decode(seg))).join('/');
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return [403, 'SignatureDoesNotMatch', 'host is not signed'];
  const headerBlock = names
    .map(n => {
      const v = req.headers[n];
      const value = Array.isArray(v) ? v.join(',') : v === undefined ? '' : String(v);
      return n + ':' + value.trim().replace(/\s+/g, ' ') + '\n';
    })
    .join('');
  const canonical = [req.method, path, canonicalQuery(rawQuery, presigned), headerBlock, signedHeaders, payload].join('\n');
  const scope = [date, region, service, 'aws4_request'].join('/');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
  const expected = crypto.createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  if (expected !== signature)
    return [403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.'];
  return null;
}

function xmlEscape(s) {
  return s.replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
}

// Failure injection for the multipart error paths, keyed by object name (after a correct
// signature): part 2 of "...inject-part-failure..." is refused with 400 InvalidPart, and the
// completion of "...inject-complete-error..." answers 200 with an <Error> body, as S3 may.
// Aborts of multipart uploads are accepted.
function injected(ctx) {
  const u = ctx.req.url;
  if (ctx.method === 'PUT' && u.includes('inject-part-failure') && /[?&]partNumber=2(&|$)/.test(u))
    return [400, 'InvalidPart', 'injected part failure'];
  if (ctx.method === 'POST' && u.includes('inject-complete-error') && /[?&]uploadId=/.test(u)) {
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n\n\n<Error><Code>InternalError</Code>' +
      '<Message>injected completion failure</Message></Error>';
    return 'done';
  }
  // s3rver has no AbortMultipartUpload (405); S3 answers 204, and the parts it kept are
  // only files in its temporary directory
  if (ctx.method === 'DELETE' && /[?&]uploadId=/.test(u)) {
    ctx.status = 204;
    return 'done';
  }
  return null;
}

async function verifier(ctx, next) {
  let bad = check(ctx.req);
  if (!bad) bad = injected(ctx);
  if (bad === 'done') return;
  if (!bad) return next();
  ctx.status = bad[0];
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + bad[1] + '</Code><Message>' +
    xmlEscape(bad[2]) + '</Message></Error>';
}

function main(argv) {
  const opts = { address: '127.0.0.1', port: 0, directory: null, buckets: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) throw new Error('missing value for ' + k);
    if (k === '--address') opts.address = v;
    else if (k === '--port') opts.port = Number(v);
    else if (k === '--directory') opts.directory = v;
    else if (k === '--bucket') opts.buckets.push({ name: v, configs: [] });
    else throw new Error('unknown option ' + k);
  }
  if (!opts.directory) throw new Error('--directory is required');
  const server = new S3rver({
    address: opts.address,
    port: opts.port,
    directory: opts.directory,
    silent: true,
    // virtual-host style requests go to BUCKET.s3.localhost (libcurl resolves *.localhost to
    // the loopback address), path style to 127.0.0.1
    serviceEndpoint: 'localhost',
    configureBuckets: opts.buckets,
  });
  // after the logger (index 0) and before everything that answers requests
  server.middleware.splice(1, 0, verifier);
  return server.run().then(({ address, port }) => {
    console.log('s3rver (SigV4 checked) listening on %s:%d', address, port);
  });
}

main(process.argv.slice(2)).catch(err => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
