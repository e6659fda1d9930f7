export * from './upload.js';
export * from './download.js';
export * from './sharing.js';
export * from './memories.js';
export * from './errors.js';
export * from './thumbnail.js';
export { type RetryPolicy, DEFAULT_RETRY, backoffMs } from './retry.js';
export { createActor, Backend } from './bindings/backend.js';
export type * from './bindings/backend.js';
