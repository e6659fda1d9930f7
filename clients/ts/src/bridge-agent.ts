// An `Agent` that sends the generated actor's calls to the loopback bridge
// (`cargo run -p upload-bridge`), which runs the canister's release `.wasm`
// in the embedded IC host. Only for local tests and the demo page: it signs
// nothing and the bridge checks no signature, so the caller is simply the
// principal of the identity given here. Against a real replica use
// `HttpAgent` from `@icp-sdk/core/agent` instead; the client code is the same.

import {
  type Agent,
  type ApiQueryResponse,
  type CallOptions,
  type Identity,
  type QueryFields,
  type ReadStateResponse,
  type RequestId,
  type SubmitResponse,
  type UpdateResult,
  HttpFetchErrorCode,
  QueryResponseStatus,
  RejectError,
  ReplicaRejectCode,
  TransportError,
  UncertifiedRejectErrorCode,
} from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';

export interface BridgeAgentOptions {
  /** The bridge's address, e.g. `http://127.0.0.1:4943`. */
  url: string;
  /** Whose calls these are; anonymous when absent. */
  identity?: Identity;
  /** Or the caller's principal itself (a controller in tests). */
  caller?: Principal;
  /** `fetch` to use (tests may wrap it). */
  fetch?: typeof fetch;
}

function randomRequestId(): RequestId {
  const id = new Uint8Array(32);
  crypto.getRandomValues(id);
  return id as RequestId;
}

export class BridgeAgent implements Agent {
  readonly rootKey: Uint8Array | null = null;
  readonly #url: string;
  #identity: Identity | undefined;
  readonly #caller: Principal | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: BridgeAgentOptions) {
    this.#url = options.url.replace(/\/$/, '');
    this.#identity = options.identity;
    this.#caller = options.caller;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async getPrincipal(): Promise<Principal> {
    return this.#caller ?? this.#identity?.getPrincipal() ?? Principal.anonymous();
  }

  replaceIdentity(identity: Identity): void {
    this.#identity = identity;
  }

  /** The raw call: Candid in, Candid out, or a reject or transport error. */
  async #send(
    kind: 'update' | 'query',
    canisterId: Principal | string,
    methodName: string,
    arg: Uint8Array,
    requestId: RequestId,
  ): Promise<{ ok: true; reply: Uint8Array } | { ok: false; code: ReplicaRejectCode; message: string }> {
    const canister = typeof canisterId === 'string' ? canisterId : canisterId.toText();
    const caller = (await this.getPrincipal()).toText();
    let response: Response;
    try {
      response = await this.#fetch(`${this.#url}/api/${kind}/${canister}/${methodName}`, {
        method: 'POST',
        headers: { 'x-caller': caller, 'content-type': 'application/octet-stream' },
        body: arg as Uint8Array<ArrayBuffer>,
      });
    } catch (error) {
      throw TransportError.fromCode(new HttpFetchErrorCode(error));
    }
    if (response.status === 200) {
      return { ok: true, reply: new Uint8Array(await response.arrayBuffer()) };
    }
    const message = await response.text().catch(() => '');
    if (response.status === 400) {
      const code = Number(response.headers.get('x-reject-code') ?? ReplicaRejectCode.CanisterError);
      return { ok: false, code: code as ReplicaRejectCode, message };
    }
    // 503 (a dropped call) and anything else: the transport failed, the
    // call may or may not have executed.
    throw TransportError.fromCode(
      new HttpFetchErrorCode(new Error(`bridge answered ${response.status} to ${methodName}: ${message}`)),
    );
  }

  async update(canisterId: Principal | string, fields: CallOptions): Promise<UpdateResult> {
    const requestId = randomRequestId();
    const result = await this.#send('update', canisterId, fields.methodName, fields.arg, requestId);
    if (!result.ok) {
      const code = new UncertifiedRejectErrorCode(requestId, result.code, result.message, undefined, undefined);
      const canister = Principal.from(canisterId);
      code.callContext = {
        canisterId: canister,
        methodName: fields.methodName,
        effectiveTarget: { canisterId: canister },
        httpDetails: { ok: false, status: 400, statusText: 'Rejected', headers: [] },
      };
      throw RejectError.fromCode(code);
    }
    return {
      reply: result.reply,
      // The bridge certifies nothing: there is no certificate to give. The
      // actor reads it only for methods annotated to return it.
      certificate: undefined as never,
      rawCertificate: new Uint8Array(),
      callResponse: { ok: true, status: 200, statusText: 'OK', body: null, headers: [] },
    };
  }

  async query(canisterId: Principal | string, options: QueryFields): Promise<ApiQueryResponse> {
    const requestId = randomRequestId();
    const result = await this.#send('query', canisterId, options.methodName, options.arg, requestId);
    const httpDetails = { ok: true, status: 200, statusText: 'OK', headers: [] };
    if (!result.ok) {
      return {
        status: QueryResponseStatus.Rejected,
        reject_code: result.code,
        reject_message: result.message,
        error_code: '',
        requestId,
        httpDetails,
      };
    }
    return { status: QueryResponseStatus.Replied, reply: { arg: result.reply }, requestId, httpDetails };
  }

  call(): Promise<SubmitResponse> {
    return unsupported('call (the actor uses update)');
  }

  readState(): Promise<ReadStateResponse> {
    return unsupported('readState');
  }

  status(): Promise<never> {
    return unsupported('status');
  }

  fetchRootKey(): Promise<Uint8Array> {
    return unsupported('fetchRootKey (the bridge has no root key)');
  }
}

function unsupported(what: string): Promise<never> {
  return Promise.reject(new Error(`BridgeAgent: ${what} is not supported`));
}
