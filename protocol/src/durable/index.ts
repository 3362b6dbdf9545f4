/**
 * @studio321/protocol/durable — the one durable verified-write primitive and the
 * read-back verifier. No wire code here.
 */
export { durableWrite, durableWriteBytes, fsyncTargetDir, makeDir, placeVerified } from './durable-write.js';
export { GroupCommit } from './group-commit.js';
export { writeLevelBatch } from '../level-batch.js';
export type { ChainedLevelBatch, LevelBatchTarget, LevelOpWithOptions, PlainLevelOp } from '../level-batch.js';
export { GroupWorker } from './group-worker.js';
export type { GroupReply, GroupRequest, GroupWorkerOptions } from './group-worker.js';
export { answerSmallGroup, SmallWriter, sharedSmallWriter, smallWriteError, writeSmallGroup } from './small-writer.js';
export type { SmallGroupRequest, SmallWrite, SmallWriteError, SmallWriteOutcome } from './small-writer.js';
export { syncFs } from './sync-fs.js';
export { createReadBack } from './read-back-lane.js';
export {
  alignedBuffer,
  BUFFERED_WRITE_MAX,
  DIRECT_ALIGN,
  DirectWriter,
  directOk,
  openDirect,
  writeParts,
} from './direct-io.js';
export type { ReadBack } from './read-back-lane.js';
export type {
  DurableTarget,
  DurableWriteOptions,
  DurableWriteResult,
  DurableCopy,
  DurableSource,
  VerificationMethod,
} from './durable-write.js';
export { verifyFile } from './verify-file.js';
export { keptReadBackBuffers, readBackFdSync, SMALL_READ_BACK } from './read-back.js';
export type { VerifyResult } from './verify-file.js';
export { sweepStaleTemps } from './sweep-stale-temps.js';
export { fsyncDir, ensureDir } from './fsync-dir.js';
export { writeFileAtomic } from './small-file.js';
export type { SmallFileOptions } from './small-file.js';
export { nodeFs } from './fs-facade.js';
export { HashPool, sharedHashPool } from './hash-pool.js';
export type { AsyncHasher } from './hash-pool.js';
export { DEFAULT_SYNC_EVERY, syncInterval } from './durable-write.js';
export { nativeHashAvailable, resolveHashEngine } from '../hash.js';
export type { HashEngine } from '../hash.js';
export type { DurableFs, DurableFileHandle, DurableStat } from './fs-facade.js';
export { checkTargetName, TEMP_SUFFIX, MAX_NAME_BYTES } from './target-name.js';
export { applyTranslation, DURABLE_CODES, durableError, isDurableCode, translateDurable } from './errors.js';
export type { DurableCode, DurableTable, DurableTranslation, Translated } from './errors.js';
export { readFileChunks } from '../hash.js';
export { DurableWriteError } from '../errors.js';
export {
  appendMhlGeneration,
  appendMhlGenerationStream,
  appendMhlGenerationBytes,
  c4Id,
  formatMhlVerify,
  MHL_CHAIN_FILE,
  MHL_FOLDER,
  MHL_IGNORE,
  mhlGenerationName,
  mhlCreationDate,
  mhlCreatorTool,
  mhlHashlistXml,
  mhlToolVersion,
  parseMhlHashes,
  readMhlHistory,
  verifyMhlFolder,
} from './mhl.js';
export type {
  MhlAction,
  MhlFile,
  MhlGenerationRecord,
  MhlGenerationInput,
  MhlProcess,
  MhlRecordedHash,
  MhlVerifyReport,
} from './mhl.js';
