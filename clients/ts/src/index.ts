export * from './upload.js';
export * from './download.js';
export * from './sharing.js';
export * from './memories.js';
export * from './errors.js';
export * from './thumbnail.js';
export * from './index-client.js';
export { type RetryPolicy, DEFAULT_RETRY, backoffMs } from './retry.js';
export { createActor, Backend } from './bindings/backend.js';
export type * from './bindings/backend.js';
// The index canister's bindings (`index/index.did`). Its type names that
// the bucket's share (`BucketState`, `Result`, ...) are under `IndexTypes`.
export { createActor as createIndexActor, Index, BucketState as IndexBucketState } from './bindings/index.js';
export type { indexInterface } from './bindings/index.js';
export type * as IndexTypes from './bindings/index.js';
