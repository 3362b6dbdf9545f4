/**
 * Transitional: durable-write.ts (rewritten in parallel) imports from this old
 * path. Delete this file once /work/tools/code-renames.sed has been applied to it.
 */
export { abortedError, durableError, hashError, isAborted, sourceError, targetError } from './errors.js';
