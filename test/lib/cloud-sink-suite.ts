/**
 * The CloudSink conformance suite: one set of tests every sink passes (like
 * tus-node-server's `stores.ts` and restic's backend test suite). It covers
 * what the cloud forwarder relies on: HEAD (null for a missing key; size,
 * metadata, storage class, checksum), PUT of a byte range, multipart uploads
 * (parts in any order, a part sent again, complete, abort, list by prefix),
 * reads, unusual keys, and the classified CloudError of each failure.
 *
 * Expectations follow AWS S3. A server that differs says how in `ServerBehaviour`,
 * and the suite then expects exactly what that server does (not "anything").
 *
 *   cloudSinkSuite(t, 'MemorySink', async (target) => { … return { sink, cleanup } });
 */
import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from '@studio321/protocol';
import {
  CloudError,
  MIN_PART_SIZE,
  compositeSha256,
  type CloudSink,
  type CloudTargetConfig,
  type CompletedPart,
} from '@studio321/studiod/cloud';

/** A fresh, opened sink for `target` (the suite's base target with these fields changed), and how to dispose of it. */
export type CloudSinkFactory = (
  target: Pick<CloudTargetConfig, 'storageClass' | 'bucket'>,
) => Promise<{ sink: CloudSink; cleanup: () => Promise<void> }>;

/** Where a server is known to differ from AWS S3. Every field true = S3 (the default). */
export interface ServerBehaviour {
  /** HEAD returns the stored SHA-256 checksum (full for a PUT, composite `…-N` for multipart). */
  serverChecksums: boolean;
  /** A body whose `x-amz-checksum-sha256` does not match is refused (BadDigest). */
  checksBodyDigest: boolean;
  /** ListMultipartUploads and AbortMultipartUpload work (otherwise null and false). */
  listsAndAbortsUploads: boolean;
  /** UploadPart and Complete with an UploadId the server does not know answer NoSuchUpload. */
  knowsUploadIds: boolean;
  /** Complete checks its part list: ETags (InvalidPart) and the 5 MiB minimum part size (EntityTooSmall). */
  checksCompleteParts: boolean;
  /** Complete of an upload the server forgot answers NoSuchUpload (RADOS Gateway: 500 InternalError). */
  completeKnowsLostUploads: boolean;
  /** Open uploads of one key are listed in creation order (RADOS Gateway: by UploadId). */
  listsUploadsInCreationOrder: boolean;
  /** Complete checks ETags before part sizes (RADOS Gateway: sizes first, EntityTooSmall). */
  completeChecksEtagsFirst: boolean;
  /** Complete may leave out uploaded parts, which are then dropped (RADOS Gateway: InvalidPart). */
  completeMayLeaveOutParts: boolean;
  /** A multipart object's ETag is S3's `"md5(part md5s)-N"` (otherwise the MD5 of the whole object). */
  multipartEtag: boolean;
  /**
   * RestoreObject: `'S3'` — a restore starts (202) and runs for hours (409
   * RestoreAlreadyInProgress, HEAD `ongoing-request="true"`); `'instant'` — it
   * completes at once (HEAD `ongoing-request="false"`, a second request 200:
   * MemorySink, which does not model rehydration); `'unsupported'` — the server
   * answers NotImplemented (s3rver).
   */
  archiveRestore: 'S3' | 'instant' | 'unsupported';
}

const S3: ServerBehaviour = {
  serverChecksums: true,
  checksBodyDigest: true,
  listsAndAbortsUploads: true,
  knowsUploadIds: true,
  checksCompleteParts: true,
  completeKnowsLostUploads: true,
  listsUploadsInCreationOrder: true,
  completeChecksEtagsFirst: true,
  completeMayLeaveOutParts: true,
  multipartEtag: true,
  archiveRestore: 'S3',
};

/** The bucket of the suite's targets: the factory's server must hold it, and must not hold `no-such-bucket`. */
export const SUITE_BUCKET = 'hot';

const md5 = (b: Uint8Array): Buffer => createHash('md5').update(b).digest();
const sha256b64 = (b: Uint8Array): string => createHash('sha256').update(b).digest('base64');
const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function readAll(sink: CloudSink, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await sink.read(key)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export function cloudSinkSuite(
  t: Test,
  name: string,
  factory: CloudSinkFactory,
  differences: Partial<ServerBehaviour> = {},
): void {
  const server: ServerBehaviour = { ...S3, ...differences };
  /** What Complete of an aborted or unknown upload rejects with. */
  const lostOnComplete = server.completeKnowsLostUploads
    ? { code: 'CLOUD_UPLOAD_LOST', retryable: true }
    : { code: 'CLOUD_UNAVAILABLE', retryable: true, detail: { httpStatus: 500, s3Code: 'InternalError' } };
  const never = new AbortController().signal;
  let dir = '';

  t.before(async () => {
    dir = await mkdtemp(join(tmpdir(), 's321-sink-suite-'));
  });
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  /** A fresh sink for one test, disposed of when the test ends. */
  async function fresh(tt: Test, target: Partial<Pick<CloudTargetConfig, 'storageClass' | 'bucket'>> = {}) {
    const made = await factory({ storageClass: 'STANDARD', bucket: SUITE_BUCKET, ...target });
    tt.teardown(made.cleanup);
    return made.sink;
  }

  /** Keys of one test live under a prefix of their own (a server is shared by all the suite's tests). */
  const prefix = (): string => `suite-${randomBytes(6).toString('hex')}/`;

  /** A source file of random bytes; `path` and the bytes. */
  async function source(size: number): Promise<{ path: string; bytes: Buffer }> {
    const bytes = randomBytes(size);
    const path = join(dir, randomBytes(6).toString('hex'));
    await writeFile(path, bytes);
    return { path, bytes };
  }

  /** The metadata the forwarder stores: the asset's BLAKE3 identity, size, SHA-256 and encoded name. */
  async function forwarderMetadata(path: string, bytes: Buffer): Promise<Record<string, string>> {
    const { blake3 } = await hashFile(path);
    return {
      blake3,
      size: String(bytes.byteLength),
      sha256: sha256hex(bytes),
      name: encodeURIComponent('DCIM/100CANON/IMG 0001.CR3'),
    };
  }

  /** Uploads parts [start, end) of `bytes` (as numbered) to an open upload; returns what Complete needs. */
  async function sendParts(
    sink: CloudSink,
    key: string,
    uploadId: string,
    src: { path: string; bytes: Buffer },
    ranges: Array<[partNumber: number, start: number, end: number]>,
  ): Promise<CompletedPart[]> {
    const out: CompletedPart[] = [];
    for (const [partNumber, start, end] of ranges) {
      const sha = sha256b64(src.bytes.subarray(start, end));
      const etag = await sink.uploadPart(
        { key, path: src.path, start, end, sha256b64: sha, signal: never },
        uploadId,
        partNumber,
      );
      out.push({ partNumber, etag, sha256b64: sha });
    }
    return out.sort((a, b) => a.partNumber - b.partNumber);
  }

  t.test(`${name}: CloudSink conformance`, async (t) => {
    t.test('HEAD of a missing key is null', async (t) => {
      const sink = await fresh(t);
      t.equal(await sink.head(`${prefix()}nothing-here`), null);
    });

    t.test(
      "PUT, then HEAD gives size, the forwarder's metadata and the storage class; GET gives the bytes",
      async (t) => {
        const sink = await fresh(t);
        const src = await source(70_001);
        const key = `${prefix()}blake3/ab/object`;
        const metadata = await forwarderMetadata(src.path, src.bytes);
        await sink.putObject(
          { key, path: src.path, start: 0, end: src.bytes.byteLength, sha256b64: sha256b64(src.bytes), signal: never },
          metadata,
        );
        const head = await sink.head(key);
        t.same(head, {
          size: src.bytes.byteLength,
          metadata,
          storageClass: 'STANDARD',
          checksumSha256: server.serverChecksums ? sha256b64(src.bytes) : undefined,
          etag: `"${md5(src.bytes).toString('hex')}"`,
        });
        t.ok((await readAll(sink, key)).equals(src.bytes), 'GET returns exactly the bytes sent');
      },
    );

    t.test('PUT sends exactly the byte range [start, end) of the file', async (t) => {
      const sink = await fresh(t);
      const src = await source(3000);
      const key = `${prefix()}range`;
      const part = src.bytes.subarray(1000, 2500);
      await sink.putObject(
        { key, path: src.path, start: 1000, end: 2500, sha256b64: sha256b64(part), signal: never },
        {},
      );
      t.equal((await sink.head(key))?.size, 1500);
      t.ok((await readAll(sink, key)).equals(part));
    });

    t.test('an empty object (0 bytes) is stored and read back', async (t) => {
      const sink = await fresh(t);
      const src = await source(0);
      const key = `${prefix()}empty`;
      await sink.putObject(
        { key, path: src.path, start: 0, end: 0, sha256b64: sha256b64(src.bytes), signal: never },
        { a: 'b' },
      );
      t.match(await sink.head(key), { size: 0, metadata: { a: 'b' } });
      t.equal((await readAll(sink, key)).byteLength, 0);
    });

    t.test("the target's storage class is applied to PUT and multipart objects", async (t) => {
      const sink = await fresh(t, { storageClass: 'DEEP_ARCHIVE' });
      const p = prefix();
      const src = await source(4000);
      await sink.putObject(
        { key: `${p}put`, path: src.path, start: 0, end: 4000, sha256b64: sha256b64(src.bytes), signal: never },
        {},
      );
      const id = await sink.createMultipart(`${p}mp`, {}, never);
      await sink.completeMultipart(`${p}mp`, id, await sendParts(sink, `${p}mp`, id, src, [[1, 0, 4000]]), never);
      t.equal((await sink.head(`${p}put`))?.storageClass, 'DEEP_ARCHIVE');
      t.equal((await sink.head(`${p}mp`))?.storageClass, 'DEEP_ARCHIVE');
    });

    t.test(
      'multipart: parts in any order, a part sent again replaces it, complete yields the concatenation',
      async (t) => {
        const sink = await fresh(t);
        const p = prefix();
        const key = `${p}blake3/cd/multi`;
        const size = MIN_PART_SIZE + 1234;
        const src = await source(size);
        const metadata = await forwarderMetadata(src.path, src.bytes);
        const id = await sink.createMultipart(key, metadata, never);
        t.type(id, 'string');
        t.equal(await sink.head(key), null, 'an open upload is not an object');
        t.same(await sink.listMultipart(p), server.listsAndAbortsUploads ? [{ key, uploadId: id }] : null);
        const [part2] = await sendParts(sink, key, id, src, [[2, MIN_PART_SIZE, size]]);
        // part 1 first with the wrong bytes (shifted by one), then again with the right ones: the last one counts
        const wrong = src.bytes.subarray(1, MIN_PART_SIZE + 1);
        await sink.uploadPart(
          { key, path: src.path, start: 1, end: MIN_PART_SIZE + 1, sha256b64: sha256b64(wrong), signal: never },
          id,
          1,
        );
        const [part1] = await sendParts(sink, key, id, src, [[1, 0, MIN_PART_SIZE]]);
        const parts = [part1!, part2!];
        await sink.completeMultipart(key, id, parts, never);
        const partMd5s = Buffer.concat([
          md5(src.bytes.subarray(0, MIN_PART_SIZE)),
          md5(src.bytes.subarray(MIN_PART_SIZE)),
        ]);
        t.same(await sink.head(key), {
          size,
          metadata,
          storageClass: 'STANDARD',
          checksumSha256: server.serverChecksums ? compositeSha256(parts.map((x) => x.sha256b64)) : undefined,
          etag: server.multipartEtag ? `"${md5(partMd5s).toString('hex')}-2"` : `"${md5(src.bytes).toString('hex')}"`,
        });
        t.ok((await readAll(sink, key)).equals(src.bytes), 'the object is part 1 then part 2');
        t.same(
          await sink.listMultipart(p),
          server.listsAndAbortsUploads ? [] : null,
          'a completed upload is not listed',
        );
      },
    );

    t.test('abort leaves no object, and the upload is no longer listed nor usable', async (t) => {
      const sink = await fresh(t);
      const p = prefix();
      const key = `${p}aborted`;
      const src = await source(1000);
      const id = await sink.createMultipart(key, {}, never);
      const parts = await sendParts(sink, key, id, src, [[1, 0, 1000]]);
      if (!server.listsAndAbortsUploads) {
        t.equal(await sink.abortMultipart(key, id), false, 'the server cannot abort (S3Sink reports false)');
        t.equal(await sink.head(key), null, 'no object');
        t.equal(await sink.listMultipart(p), null, 'the server cannot list');
        t.equal(await sink.uploadKnown(key, id), null, 'nor tell whether an upload exists (ListParts)');
        return;
      }
      t.equal(await sink.uploadKnown(key, id), true, 'ListParts: the upload exists');
      t.equal(await sink.abortMultipart(key, id), true);
      t.equal(await sink.head(key), null, 'no object');
      t.same(await sink.listMultipart(p), [], 'not listed');
      t.equal(await sink.uploadKnown(key, id), false, 'ListParts: the upload is gone');
      t.equal(await sink.abortMultipart(key, id), false, 'a second abort: already gone');
      await t.rejects(
        sink.uploadPart(
          { key, path: src.path, start: 0, end: 1000, sha256b64: parts[0]!.sha256b64, signal: never },
          id,
          2,
        ),
        { code: 'CLOUD_UPLOAD_LOST', retryable: true },
      );
      await t.rejects(sink.completeMultipart(key, id, parts, never), lostOnComplete);
      t.equal(await sink.head(key), null, 'still no object');
    });

    t.test('an UploadId the server does not know', async (t) => {
      const sink = await fresh(t);
      const key = `${prefix()}unknown-upload`;
      const src = await source(100);
      const part = { key, path: src.path, start: 0, end: 100, sha256b64: sha256b64(src.bytes), signal: never };
      const bogus = 'f'.repeat(32);
      const parts = [{ partNumber: 1, etag: `"${md5(src.bytes).toString('hex')}"`, sha256b64: part.sha256b64 }];
      if (server.knowsUploadIds) {
        await t.rejects(sink.uploadPart(part, bogus, 1), { code: 'CLOUD_UPLOAD_LOST', retryable: true });
        await t.rejects(sink.completeMultipart(key, bogus, parts, never), lostOnComplete);
      } else {
        // s3rver stores a part for any UploadId, then fails Complete with 500 InternalError.
        t.equal(await sink.uploadPart(part, bogus, 1), parts[0]!.etag, 'the part is accepted');
        await t.rejects(sink.completeMultipart(key, bogus, parts, never), {
          code: 'CLOUD_UNAVAILABLE',
          retryable: true,
          detail: { httpStatus: 500, s3Code: 'InternalError' },
        });
      }
      t.equal(await sink.head(key), null, 'no object');
    });

    t.test('listMultipart lists the open uploads under the prefix, and only those', async (t) => {
      const sink = await fresh(t);
      const p = prefix();
      const keys = [`${p}in/b`, `${p}in/a`, `${p}in/a`, `${p}inside/c`, `${p}out/d`];
      const ids: string[] = [];
      for (const k of keys) ids.push(await sink.createMultipart(k, {}, never));
      const listed = await sink.listMultipart(`${p}in/`);
      if (!server.listsAndAbortsUploads) {
        t.equal(listed, null, 'the server cannot list (S3Sink reports null)');
        return;
      }
      const sameKey = [ids[1] as string, ids[2] as string];
      if (!server.listsUploadsInCreationOrder) sameKey.sort();
      t.same(
        listed,
        [
          { key: `${p}in/a`, uploadId: sameKey[0] },
          { key: `${p}in/a`, uploadId: sameKey[1] },
          { key: `${p}in/b`, uploadId: ids[0] },
        ],
        `by key, then ${server.listsUploadsInCreationOrder ? 'in creation order' : 'by UploadId'}; not in/side, not out/`,
      );
      t.equal((await sink.listMultipart(p))?.length, 5);
      t.same(await sink.listMultipart(`${p}nothing/`), []);
      for (const [i, k] of keys.entries()) t.equal(await sink.abortMultipart(k, ids[i]!), true);
      t.same(await sink.listMultipart(p), []);
    });

    t.test('keys with spaces, unicode, #, +, ?, & and % round-trip', async (t) => {
      const sink = await fresh(t);
      const p = prefix();
      const names = ['IMG 0001.CR3', 'Été/日本語 ファイル.MP4', 'a#b', 'c+d', 'e?f=1&g', '100%20off', 'emoji 📷.jpg'];
      const src = await source(321);
      for (const n of names) {
        const key = `${p}${n}`;
        await sink.putObject(
          { key, path: src.path, start: 0, end: 321, sha256b64: sha256b64(src.bytes), signal: never },
          { blake3: 'x' },
        );
        t.match(await sink.head(key), { size: 321, metadata: { blake3: 'x' } }, `HEAD ${n}`);
        t.ok((await readAll(sink, key)).equals(src.bytes), `GET ${n}`);
      }
      t.equal(await sink.head(`${p}c d`), null, '"+" is not a space');
      t.equal(await sink.head(`${p}100 off`), null, '"%20" is not decoded');
      const mpKey = `${p}multi part/ü#+.MP4`;
      const id = await sink.createMultipart(mpKey, {}, never);
      t.same(
        await sink.listMultipart(`${p}multi part/`),
        server.listsAndAbortsUploads ? [{ key: mpKey, uploadId: id }] : null,
      );
      await sink.completeMultipart(mpKey, id, await sendParts(sink, mpKey, id, src, [[1, 0, 321]]), never);
      t.ok((await readAll(sink, mpKey)).equals(src.bytes), 'multipart object under an unusual key');
    });

    t.test('GET of a missing key: CLOUD_REQUEST_REJECTED (NoSuchKey), permanent', async (t) => {
      const sink = await fresh(t);
      await t.rejects(sink.read(`${prefix()}missing`), CloudError);
      await t.rejects(sink.read(`${prefix()}missing`), {
        code: 'CLOUD_REQUEST_REJECTED',
        retryable: false,
        detail: { httpStatus: 404, s3Code: 'NoSuchKey', operation: 'GET' },
      });
    });

    t.test('a body whose SHA-256 does not match what was declared', async (t) => {
      const sink = await fresh(t);
      const p = prefix();
      const src = await source(2000);
      const lie = sha256b64(Buffer.from('other bytes'));
      const put = (): Promise<void> =>
        sink.putObject({ key: `${p}bad`, path: src.path, start: 0, end: 2000, sha256b64: lie, signal: never }, {});
      const id = await sink.createMultipart(`${p}badpart`, {}, never);
      const part = (): Promise<string> =>
        sink.uploadPart(
          { key: `${p}badpart`, path: src.path, start: 0, end: 2000, sha256b64: lie, signal: never },
          id,
          1,
        );
      if (server.checksBodyDigest) {
        const badDigest = {
          code: 'CLOUD_REQUEST_REJECTED',
          retryable: false,
          detail: { httpStatus: 400, s3Code: 'BadDigest' },
        };
        await t.rejects(put(), badDigest);
        await t.rejects(part(), badDigest);
        t.equal(await sink.head(`${p}bad`), null, 'nothing stored');
        await t.rejects(
          sink.completeMultipart(`${p}badpart`, id, [{ partNumber: 1, etag: '"x"', sha256b64: lie }], never),
          { code: 'CLOUD_REQUEST_REJECTED', detail: { s3Code: 'InvalidPart' } },
          'the refused part is not part of the upload',
        );
      } else {
        // s3rver checks no checksum: it stores what it received.
        await put();
        await part();
        t.equal((await sink.head(`${p}bad`))?.size, 2000, 'stored as received');
      }
      t.equal(await sink.head(`${p}badpart`), null, 'no multipart object');
    });

    t.test('Complete with an undersized first part, or a wrong ETag', async (t) => {
      const sink = await fresh(t);
      const p = prefix();
      const src = await source(3000);
      const key = `${p}small-parts`;
      const id = await sink.createMultipart(key, {}, never);
      const parts = await sendParts(sink, key, id, src, [
        [1, 0, 1000],
        [2, 1000, 3000],
      ]);
      const wrongEtag = [{ ...parts[0]!, etag: `"${'0'.repeat(32)}"` }, parts[1]!];
      if (server.checksCompleteParts) {
        await t.rejects(sink.completeMultipart(key, id, wrongEtag, never), {
          code: 'CLOUD_REQUEST_REJECTED',
          retryable: false,
          detail: { httpStatus: 400, s3Code: server.completeChecksEtagsFirst ? 'InvalidPart' : 'EntityTooSmall' },
        });
        await t.rejects(sink.completeMultipart(key, id, parts, never), {
          code: 'CLOUD_REQUEST_REJECTED',
          retryable: false,
          detail: { httpStatus: 400, s3Code: 'EntityTooSmall' },
        });
        t.equal(await sink.head(key), null, 'no object');
        if (server.listsAndAbortsUploads)
          t.same(await sink.listMultipart(p), [{ key, uploadId: id }], 'the upload stays open');
        if (server.completeMayLeaveOutParts) {
          // the last part alone may be any size
          await sink.completeMultipart(key, id, [parts[1]!], never);
          t.ok((await readAll(sink, key)).equals(src.bytes.subarray(1000)), 'parts left out of Complete are dropped');
        } else {
          await t.rejects(sink.completeMultipart(key, id, [parts[1]!], never), {
            code: 'CLOUD_REQUEST_REJECTED',
            detail: { s3Code: 'InvalidPart' },
          });
          t.equal(await sink.head(key), null, 'every uploaded part must be listed: no object');
        }
      } else {
        // s3rver checks neither ETags nor part sizes: it concatenates the part numbers listed.
        await sink.completeMultipart(key, id, wrongEtag, never);
        t.ok((await readAll(sink, key)).equals(src.bytes), 'the undersized part is accepted');
      }
    });

    t.test('PUT from a mirror file that is gone: CLOUD_SOURCE_MISSING (permanent), nothing stored', async (t) => {
      const sink = await fresh(t);
      const src = await source(5000);
      await rm(src.path);
      const key = `${prefix()}gone-source`;
      const put = { key, path: src.path, start: 0, end: 5000, sha256b64: sha256b64(src.bytes), signal: never };
      await t.rejects(sink.putObject(put, {}), { code: 'CLOUD_SOURCE_MISSING', retryable: false });
      t.equal(await sink.head(key), null, 'no object');
      const id = await sink.createMultipart(key, {}, never);
      await t.rejects(sink.uploadPart(put, id, 1), { code: 'CLOUD_SOURCE_MISSING' }, 'a part too');
      await sink.abortMultipart(key, id);
    });

    t.test('an aborted signal: PUT rejects CLOUD_UNAVAILABLE (retryable), nothing stored', async (t) => {
      const sink = await fresh(t);
      const src = await source(5000);
      const key = `${prefix()}aborted-put`;
      const ac = new AbortController();
      ac.abort(new Error('studiod is stopping'));
      await t.rejects(
        sink.putObject(
          { key, path: src.path, start: 0, end: 5000, sha256b64: sha256b64(src.bytes), signal: ac.signal },
          {},
        ),
        { code: 'CLOUD_UNAVAILABLE', retryable: true },
      );
      t.equal(await sink.head(key), null);
    });

    t.test(
      'a bucket that does not exist: HEAD null, PUT and CreateMultipartUpload CLOUD_NO_SUCH_BUCKET (permanent)',
      async (t) => {
        const sink = await fresh(t, { bucket: 'no-such-bucket' });
        const src = await source(10);
        const key = `${prefix()}x`;
        const noBucket = { code: 'CLOUD_NO_SUCH_BUCKET', retryable: false };
        // A HEAD response has no body: its 404 cannot say NoSuchBucket (the SDK calls every bodiless 404
        // NotFound), so HEAD says "no object" and the PUT that follows names the missing bucket.
        t.equal(await sink.head(key), null, 'HEAD cannot tell a missing bucket from a missing key');
        await t.rejects(
          sink.putObject(
            { key, path: src.path, start: 0, end: 10, sha256b64: sha256b64(src.bytes), signal: never },
            {},
          ),
          noBucket,
        );
        await t.rejects(sink.createMultipart(key, {}, never), noBucket);
      },
    );

    t.test('RestoreObject of an archive-class object: requested, and HEAD shows the restore', async (t) => {
      const sink = await fresh(t, { storageClass: 'DEEP_ARCHIVE' });
      const src = await source(700);
      const key = `${prefix()}archived`;
      await sink.putObject(
        { key, path: src.path, start: 0, end: 700, sha256b64: sha256b64(src.bytes), signal: never },
        {},
      );
      t.notOk('restore' in ((await sink.head(key)) ?? {}), 'no restore field before one is requested');
      const ask = (): ReturnType<CloudSink['restoreObject']> => sink.restoreObject(key, { days: 2, tier: 'Bulk' });
      if (server.archiveRestore === 'unsupported') {
        await t.rejects(ask(), {
          code: 'CLOUD_NOT_SUPPORTED',
          retryable: false,
          detail: { httpStatus: 501, s3Code: 'NotImplemented' },
        });
        t.notOk('restore' in ((await sink.head(key)) ?? {}), 'the server keeps no restore state');
        return;
      }
      t.equal(await ask(), 'started', 'a new request (202)');
      if (server.archiveRestore === 'S3') {
        t.equal(await ask(), 'in-progress', 'RestoreAlreadyInProgress (409)');
        t.same((await sink.head(key))?.restore, { ongoing: true }, 'HEAD: ongoing-request="true"');
        await t.rejects(
          sink.read(key),
          { code: 'CLOUD_ACCESS_DENIED', detail: { httpStatus: 403, s3Code: 'InvalidObjectState' } },
          'GET refused until restored',
        );
      } else {
        t.equal(await ask(), 'restored', 'already restored (200)');
        t.same((await sink.head(key))?.restore, { ongoing: false }, 'HEAD: ongoing-request="false"');
        t.ok((await readAll(sink, key)).equals(src.bytes), 'readable');
      }
    });

    t.test('RestoreObject of a hot object: InvalidObjectState; of a missing key: NoSuchKey', async (t) => {
      const sink = await fresh(t);
      const src = await source(10);
      const key = `${prefix()}hot`;
      await sink.putObject(
        { key, path: src.path, start: 0, end: 10, sha256b64: sha256b64(src.bytes), signal: never },
        {},
      );
      const opts = { days: 1, tier: 'Bulk' } as const;
      if (server.archiveRestore === 'unsupported') {
        await t.rejects(sink.restoreObject(key, opts), {
          code: 'CLOUD_NOT_SUPPORTED',
          detail: { s3Code: 'NotImplemented' },
        });
        return;
      }
      await t.rejects(sink.restoreObject(key, opts), {
        code: 'CLOUD_ACCESS_DENIED',
        retryable: false,
        detail: { httpStatus: 403, s3Code: 'InvalidObjectState', operation: 'RestoreObject' },
      });
      await t.rejects(sink.restoreObject(`${prefix()}missing`, opts), {
        code: 'CLOUD_REQUEST_REJECTED',
        retryable: false,
        detail: { httpStatus: 404, s3Code: 'NoSuchKey' },
      });
      t.notOk('restore' in ((await sink.head(key)) ?? {}));
    });

    t.test('a sink is usable only while open: after close() every call is a TypeError', async (t) => {
      const sink = await fresh(t);
      const src = await source(10);
      await sink.close();
      const key = `${prefix()}closed`;
      await t.rejects(sink.head(key), TypeError);
      await t.rejects(
        sink.putObject({ key, path: src.path, start: 0, end: 10, sha256b64: sha256b64(src.bytes), signal: never }, {}),
        TypeError,
      );
      await t.rejects(sink.read(key), TypeError);
      await t.rejects(sink.listMultipart(''), TypeError);
      await t.rejects(sink.restoreObject(key, { days: 1, tier: 'Bulk' }), TypeError);
      await sink.close();
      t.pass('close() again is harmless');
    });
  });
}
