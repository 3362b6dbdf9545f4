/** Card and folder sources: mounted volumes, card detection and identity, the scanner, the source reader, hot folders. */
export * from './detector.js';
export * from './hot-folder.js';
export * from './identity.js';
export * from './scanner.js';
export * from './source-reader.js';
export * from './volume-source.js';
export * from './volume-watcher.js';
export * from './capture.js';
export * from './small-read.js';
