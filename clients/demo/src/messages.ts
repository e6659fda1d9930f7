// One sentence for every error a person can meet: what happened and what
// to do. Never the agent's raw text, a stack trace or a canister's reason
// string: those go to the console for whoever debugs the page.

import { AgentError, CertifiedRejectErrorCode, ErrorKindEnum, UncertifiedRejectErrorCode, UncertifiedRejectUpdateErrorCode } from '@icp-sdk/core/agent';
import {
  DelegationExpired,
  DownloadCorrupted,
  PlacementFailed,
  RetriesExhausted,
  ShareFailed,
  UploadAborted,
  UploadFailed,
  isDelegationExpiry,
  isTransportFailure,
  type UploadError,
} from '../../ts/src/index';
import { formatBytes } from './dom';

export interface Where {
  /** The network's URL (the page's `network` parameter). */
  network: string;
  /** The canister id (the page's `canister` parameter). */
  canister: string;
}

type QuotaExceeded = Extract<UploadError, { __kind__: 'QuotaExceeded' }>['QuotaExceeded'];

/** What each quota limits, and whether it counts bytes. */
const QUOTAS: Record<string, { what: string; bytes: boolean; fix: string }> = {
  FileBytes: { what: 'the largest file this canister takes', bytes: true, fix: 'choose a smaller file or ask the canister’s controller to raise it' },
  ChunkBytes: { what: 'the largest chunk', bytes: true, fix: 'reload the page (it then sends smaller chunks)' },
  ChunksPerSession: { what: 'the most chunks one upload may have', bytes: false, fix: 'use larger chunks or a smaller file' },
  OpenSessionsPerCaller: { what: 'the uploads you may have in progress', bytes: false, fix: 'let one finish or abort it, then try again' },
  ReservedBytesPerCaller: { what: 'the space your uploads in progress may reserve', bytes: true, fix: 'let one finish or abort it, then try again' },
  ReservedBytesTotal: { what: 'the space everyone’s uploads in progress may reserve', bytes: true, fix: 'try again later' },
  StoredBytesPerCaller: { what: 'the space you may use', bytes: true, fix: 'delete memories you no longer need, or ask the canister’s controller for more' },
  TotalBytes: { what: 'the canister’s total space', bytes: true, fix: 'delete memories you no longer need, or try again later' },
  CapsulesPerOwner: { what: 'the capsules you may own', bytes: false, fix: 'use one of your capsules' },
  WritersPerCapsule: { what: 'the writers a capsule may have', bytes: false, fix: 'remove a writer first' },
  ReadBytes: { what: 'the most bytes one read may ask for', bytes: true, fix: 'reload the page and try again' },
};

function quotaSentence(q: QuotaExceeded): string {
  const known = QUOTAS[q.quota] ?? { what: `the ${q.quota} limit`, bytes: false, fix: 'ask the canister’s controller' };
  const n = (v: bigint) => (known.bytes ? formatBytes(v) : v.toString());
  return (
    `Over quota (${q.quota}): this needs ${n(q.requested)}, but ${known.what} is ${n(q.limit)}; ` +
    `${known.fix}.`
  );
}

function uploadSentence(error: UploadFailed): string {
  const e = error.error;
  switch (e.__kind__) {
    case 'QuotaExceeded':
      return quotaSentence(e.QuotaExceeded);
    case 'SessionExpired':
      return 'The upload session expired (nothing arrived for too long): choose the file again to start it over.';
    case 'SessionAborted':
      return 'This upload was aborted: choose the file again to start it over.';
    case 'OutOfSpace':
      return 'The canister has run out of storage space: delete memories you no longer need, or try again later.';
    case 'CapsuleNotFound':
      return 'That capsule no longer exists: choose another one or create a capsule.';
    case 'MemoryNotFound':
      return 'That memory no longer exists (deleted elsewhere?): reload the page to see the capsule as it is.';
    case 'NotAuthorized':
      return 'You are not allowed to do that here (the capsule or memory is someone else’s): use one of your own capsules.';
    case 'AnonymousCaller':
      return 'The canister does not take anonymous calls: sign in first.';
    case 'ChecksumMismatch':
    case 'ChunkChecksumMismatch':
    case 'DeclaredHashesDisagree':
      return `The canister received different bytes than were sent (${e.__kind__}): choose the file again; if it changed meanwhile, this is expected.`;
    default:
      return `The canister refused this (${e.__kind__}): correct what you entered or try again, and report that kind if it keeps happening.`;
  }
}

function shareSentence(error: ShareFailed): string {
  const e = error.error;
  switch (e.__kind__) {
    case 'TooManyLinks':
      return `This memory already has ${e.TooManyLinks.limit} share links, the most it may have: revoke one, then try again.`;
    case 'CapacityExhausted':
      return 'The canister cannot serve more shared files right now: revoke links of memories you no longer share, then try again.';
    case 'RandomnessUnavailable':
      return 'The canister could not make a secret link key just now: try again in a moment.';
    case 'LinkNotFound':
      return 'That link no longer exists (revoked or expired already).';
    case 'MemoryNotFound':
      return 'That memory no longer exists (deleted elsewhere?): reload the page.';
    case 'NotAuthorized':
      return 'Only the capsule’s owner and the memory’s uploader may share it.';
    case 'InvalidArgument':
      return 'The canister refused the link’s settings (InvalidArgument): choose an expiry in the future.';
    case 'AnonymousCaller':
      return 'The canister does not take anonymous calls: sign in first.';
    default:
      return `The canister refused to share (${(e as { __kind__: string }).__kind__}): try again.`;
  }
}

function placementSentence(error: PlacementFailed): string {
  const e = error.error;
  switch (e.__kind__) {
    case 'NoOpenBucket':
    case 'BucketUnavailable':
    case 'RegistrationPending':
      return `The index has no room ready for this capsule now (${e.__kind__}): it is making some; try again in a minute.`;
    case 'CapsulesPerOwnerExceeded':
      return `You own ${e.CapsulesPerOwnerExceeded.limit} capsules already, the most the index allows: use one of them.`;
    case 'CapsuleNotFound':
      return 'The index does not know this capsule: reload the page.';
    case 'CapsuleSpansTooManyBuckets':
      return 'This capsule is full: create a new capsule for more memories.';
    case 'NotAuthorized':
      return 'The index lets only allowed people create capsules: ask its controllers.';
    case 'AnonymousCaller':
      return 'The index does not take anonymous calls: sign in first.';
    case 'InvalidArgument':
      return 'The index refused the capsule’s name (InvalidArgument): choose a shorter one.';
    default:
      return `The index refused (${(e as { __kind__: string }).__kind__}): try again.`;
  }
}

function rejectCode(error: AgentError): string | undefined {
  const code = error.code;
  if (
    code instanceof CertifiedRejectErrorCode ||
    code instanceof UncertifiedRejectErrorCode ||
    code instanceof UncertifiedRejectUpdateErrorCode
  ) {
    return code.rejectErrorCode ?? `reject code ${code.rejectCode}`;
  }
  return undefined;
}

function agentSentence(error: AgentError, where: Where): string {
  if (isTransportFailure(error)) return unreachable(where);
  const reject = rejectCode(error);
  if (reject === 'IC0301' || reject === 'IC0302') {
    return `There is no canister ${where.canister} on ${where.network}: check the page’s canister parameter.`;
  }
  if (reject === 'IC0536') {
    return `The canister ${where.canister} does not have this method (IC0536): is it the upload canister, and up to date?`;
  }
  if (reject === 'IC0503' || reject === 'IC0502') {
    return `The canister failed while handling this (${reject}): try again, and report it if it keeps happening.`;
  }
  if (reject) return `The canister rejected the call (${reject}): try again, and report that code if it keeps happening.`;
  if (error.kind === ErrorKindEnum.Trust) {
    return `The network’s answer could not be verified (${codeName(error)}): check this computer’s clock, then reload the page.`;
  }
  return `The call failed (${error.kind}: ${codeName(error)}): try again, and report that if it keeps happening.`;
}

/** The agent's name for what went wrong, e.g. `HttpErrorCode`. */
function codeName(error: AgentError): string {
  return (error.code as { name?: string } | undefined)?.name ?? 'unknown';
}

function unreachable(where: Where): string {
  return `Cannot reach the network at ${where.network}: check that it is running and that the page’s network parameter is its address, then reload.`;
}

/** The one sentence shown for `error`. */
export function explain(error: unknown, where: Where): string {
  if (error instanceof UploadAborted) return 'Aborted: nothing more is sent, and the canister freed what it had reserved.';
  if (error instanceof DelegationExpired || isDelegationExpiry(error)) {
    return 'Your sign-in expired: sign in again, then choose the same file to continue where it stopped.';
  }
  if (error instanceof UploadFailed) return uploadSentence(error);
  if (error instanceof ShareFailed) return shareSentence(error);
  if (error instanceof PlacementFailed) return placementSentence(error);
  if (error instanceof DownloadCorrupted) {
    return 'The bytes read back do not match the SHA-256 recorded at upload, so nothing was saved: try again.';
  }
  if (error instanceof RetriesExhausted) {
    if (error.cause instanceof AgentError && rejectCode(error.cause)) return agentSentence(error.cause, where);
    return `The network at ${where.network} stopped answering (${error.attempts} attempts): check that it is running, then try again.`;
  }
  if (error instanceof AgentError) return agentSentence(error, where);
  if (isTransportFailure(error)) return unreachable(where);
  const name = error instanceof Error ? error.name : typeof error;
  return `Something went wrong (${name}): try again, and reload the page if it keeps happening.`;
}
