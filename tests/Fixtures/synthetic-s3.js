// A synthetic S3 endpoint for load tests (issue 19): source buckets of any size that exist only as arithmetic, and
// target buckets that keep only each object's key, size and MD5, so a 50,000-object job needs no seeding and no disk.
// Path-style requests only; signatures are not checked.
//
//   node synthetic-s3.js PORT [SIZE] [LIST_DELAY_MS]
//
// A bucket named src-<N> holds N objects data/00000000.bin ... of SIZE bytes (default 512), each body a function of its
// key; listings take continuation-token and start-after. Any other bucket is a target: it exists, starts empty and
// records what is PUT into it. GET /__stats?bucket=B answers, as JSON, how many keys B holds, how many PUTs it took,
// how many keys were PUT more than once and how many bodies were not the source's bytes.
'use strict';
const http = require('http');
const crypto = require('crypto');

const port = parseInt(process.argv[2], 10);
const size = parseInt(process.argv[3] || '512', 10);
// How long each listing page takes to answer, as a distant server's does (0: at once).
const listDelay = parseInt(process.argv[4] || '0', 10);
const targets = new Map(); // bucket -> { objects: Map(key -> { etag, size }), puts, duplicates, badBodies, sorted }

const keyOf = (i) => `data/${String(i).padStart(8, '0')}.bin`;
const indexOf = (key) => { const m = /^data\/(\d{8})\.bin$/.exec(key); return m ? parseInt(m[1], 10) : -1; };
function bodyOf(key) {
  const line = Buffer.from(`${key}\n`);
  const body = Buffer.alloc(size);
  for (let at = 0; at < size; at += line.length) line.copy(body, at, 0, Math.min(line.length, size - at));
  return body;
}
const md5 = (buffer) => crypto.createHash('md5').update(buffer).digest('hex');
const sourceCount = (bucket) => { const m = /^src-(\d+)$/.exec(bucket); return m ? parseInt(m[1], 10) : -1; };
const escapeXml = (s) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
const modified = new Date(Date.UTC(2024, 0, 1)).toUTCString();
const modifiedIso = new Date(Date.UTC(2024, 0, 1)).toISOString();

function target(bucket) {
  let t = targets.get(bucket);
  if (!t) targets.set(bucket, t = { objects: new Map(), puts: 0, duplicates: 0, badBodies: 0, sorted: null });
  return t;
}

function send(res, status, body, headers = {}) {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body || '');
  res.writeHead(status, { 'Content-Length': buffer.length, 'x-amz-request-id': 'synthetic', ...headers });
  res.end(buffer);
}
const xml = (res, status, text) => send(res, status, `<?xml version="1.0" encoding="UTF-8"?>\n${text}`, { 'Content-Type': 'application/xml' });
const error = (res, status, code, message) => xml(res, status, `<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`);

function list(res, bucket, query) {
  const maxKeys = Math.min(parseInt(query.get('max-keys') || '1000', 10), 1000);
  const prefix = query.get('prefix') || '';
  const entries = [];
  let next = null;
  const count = sourceCount(bucket);
  const sorted = count >= 0 ? null : (target(bucket).sorted = target(bucket).sorted || [...target(bucket).objects.keys()].sort());
  const length = count >= 0 ? count : sorted.length;
  const at = count >= 0 ? keyOf : (i) => sorted[i];
  // A continuation token is the index to go on from; start-after starts at the first key past it (keys are in order).
  let start = parseInt(query.get('continuation-token') || '0', 10);
  const startAfter = query.get('start-after');
  if (!query.has('continuation-token') && startAfter) {
    let [low, high] = [0, length];
    while (low < high) { const mid = (low + high) >> 1; if (at(mid) <= startAfter) low = mid + 1; else high = mid; }
    start = low;
  }
  if (count >= 0) {
    for (let i = start; i < count; i++) {
      if (entries.length === maxKeys) { next = String(i); break; }
      const key = keyOf(i);
      if (key.startsWith(prefix)) entries.push({ key, size, etag: md5(bodyOf(key)) });
    }
  } else {
    const t = target(bucket);
    for (let i = start; i < sorted.length; i++) {
      if (entries.length === maxKeys) { next = String(i); break; }
      const key = sorted[i];
      if (key.startsWith(prefix)) entries.push({ key, ...t.objects.get(key) });
    }
  }
  const contents = entries.map((e) => `<Contents><Key>${encodeURIComponent(e.key)}</Key><LastModified>${modifiedIso}</LastModified>` +
    `<ETag>"${e.etag}"</ETag><Size>${e.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`).join('');
  xml(res, 200, `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>${escapeXml(prefix)}</Prefix>` +
    `<KeyCount>${entries.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><EncodingType>url</EncodingType><IsTruncated>${next !== null}</IsTruncated>` +
    (next !== null ? `<NextContinuationToken>${next}</NextContinuationToken>` : '') + contents + '</ListBucketResult>');
}

function objectHead(bucket, key) {
  if (sourceCount(bucket) >= 0) {
    const i = indexOf(key);
    return i >= 0 && i < sourceCount(bucket) ? { etag: md5(bodyOf(key)), size, body: bodyOf(key) } : null;
  }
  const stored = target(bucket).objects.get(key);
  return stored ? { ...stored, body: null } : null;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://synthetic');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const query = url.searchParams;
  if (bucket === '__stats') {
    const t = target(query.get('bucket'));
    return send(res, 200, JSON.stringify({ keys: t.objects.size, puts: t.puts, duplicates: t.duplicates, badBodies: t.badBodies }), { 'Content-Type': 'application/json' });
  }
  if (!bucket) return xml(res, 200, '<ListAllMyBucketsResult><Owner><ID>synthetic</ID></Owner><Buckets></Buckets></ListAllMyBucketsResult>');
  if (!key) {
    if (req.method === 'HEAD') return send(res, 200, '');
    if (req.method === 'GET' && query.has('location')) return xml(res, 200, '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>');
    if (req.method === 'GET') return listDelay > 0 ? setTimeout(() => list(res, bucket, query), listDelay) : list(res, bucket, query);
    return error(res, 501, 'NotImplemented', `${req.method} on a bucket is not synthesized`);
  }
  if (query.has('tagging')) {
    if (req.method === 'GET') return xml(res, 200, '<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet></TagSet></Tagging>');
    req.resume();
    return req.on('end', () => send(res, 200, ''));
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    const head = objectHead(bucket, key);
    if (!head) return req.method === 'HEAD' ? send(res, 404, '') : error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    const ifMatch = req.headers['if-match'];
    if (ifMatch && ifMatch.replace(/"/g, '') !== head.etag) return error(res, 412, 'PreconditionFailed', 'If-Match');
    const headers = { ETag: `"${head.etag}"`, 'Last-Modified': modified, 'Content-Type': 'application/octet-stream' };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'Content-Length': head.size });
      return res.end();
    }
    return send(res, 200, head.body || Buffer.alloc(0), headers);
  }
  if (req.method === 'PUT' && !query.has('partNumber') && !query.has('uploadId')) {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const etag = md5(body);
      const contentMd5 = req.headers['content-md5'];
      if (contentMd5 && Buffer.from(contentMd5, 'base64').toString('hex') !== etag) return error(res, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      const t = target(bucket);
      t.puts++;
      if (t.objects.has(key)) t.duplicates++;
      if (indexOf(key) < 0 || !bodyOf(key).equals(body)) t.badBodies++;
      t.objects.set(key, { etag, size: body.length });
      t.sorted = null;
      send(res, 200, '', { ETag: `"${etag}"` });
    });
    return undefined;
  }
  req.resume();
  return error(res, 501, 'NotImplemented', `${req.method} ${req.url} is not synthesized`);
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
