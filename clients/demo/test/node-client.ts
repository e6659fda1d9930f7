// What the page tests use from Node, bundled by esbuild at test time (as
// the page is): the client, its bindings and @icp-sdk/core, so the tests
// upload, share and set limits as a dapp's backend script would.

export { HttpAgent } from '@icp-sdk/core/agent';
export { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
export { IndexBucketState, IndexClient, createActor, createIndexActor, share, shares, unshare, upload, unwrap } from '../../ts/src/index';
