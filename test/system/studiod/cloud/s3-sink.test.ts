/**
 * S3Sink against a real s3rver child process on loopback: the CloudSink
 * conformance suite.
 *
 * s3rver is not S3, and the suite is told exactly where (and then expects
 * exactly what s3rver does): it checks neither SigV4 signatures (only the
 * access key id) nor any checksum (x-amz-checksum-sha256 is ignored, HEAD
 * returns none); it implements neither ListMultipartUploads (501) nor
 * AbortMultipartUpload (405); it stores a part for any UploadId and fails
 * Complete for an unknown one with 500 InternalError; Complete checks neither
 * ETags nor part sizes (and a part number never uploaded crashes the server,
 * so the suite never sends one); a multipart object's ETag is the MD5 of the
 * whole object; RestoreObject is NotImplemented (501), and it serves an
 * archive-class object at once (no InvalidObjectState). The same suite runs against a real S3 server,
 * RADOS Gateway, in rgw.test.ts.
 */
import t from 'tap';
import { S3Sink } from '@studio321/studiod/cloud';
import { S3rverProcess } from '../../../lib/s3rver.js';
import { target } from '../../../lib/cloud-fixture.js';
import { cloudSinkSuite, SUITE_BUCKET } from '../../../lib/cloud-sink-suite.js';

const s3 = new S3rverProcess({ buckets: [SUITE_BUCKET] });
await s3.start();
t.teardown(() => s3.close());

cloudSinkSuite(
  t,
  'S3Sink on s3rver',
  async (fields) => {
    const sink = new S3Sink({ ...target('s3rver', s3.endpoint, SUITE_BUCKET), ...fields });
    await sink.open();
    return { sink, cleanup: () => sink.close() };
  },
  {
    serverChecksums: false,
    checksBodyDigest: false,
    listsAndAbortsUploads: false,
    knowsUploadIds: false,
    checksCompleteParts: false,
    multipartEtag: false,
    archiveRestore: 'unsupported',
  },
);
