export * from './errors.js';
export * from './cloud-target.js';
export * from './cloud-queue.js';
export * from './rate-limiter.js';
export * from './s3-sink.js';
export * from './memory-sink.js';
export * from './source-digest.js';
export * from './cloud-forwarder.js';
export { UploadJob, lockMismatch, type UploadJobContext } from './upload-job.js';
