import { randomBytes } from "node:crypto";
import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcResponse } from "./jsonrpc.js";

/** Ids of the gateway's own upstream requests (catalog lookups) start with this. */
export const GATEWAY_ID_PREFIX = "portcullis:";

/**
 * This process among the gateway's replicas. Replicas serve one upstream session side by side, so
 * the ids they choose upstream carry it: two replicas never have one id in flight there.
 */
export const REPLICA_ID = randomBytes(6).toString("base64url");

/**
 * The ids of one upstream connection. An upstream matches answers to requests by id within a
 * session, so two requests in flight with one id would let one caller receive the other's answer
 * (an agent that reused the gateway's catalog-lookup id once got the unfiltered tools/list). So:
 * the gateway's own requests get ids in a namespace of their own; an agent id that falls in that
 * namespace, or that is already in flight, is replaced by a fresh one of the namespace and restored
 * on the answer. No upstream id is ever in flight twice, and none of the gateway's equals an agent's.
 */
export class UpstreamIds {
  private next = 1;
  /** Upstream id → the agent's id (identical for most requests). */
  private readonly inFlight = new Map<JsonRpcId, JsonRpcId | null>();

  /** The id to send; `clientId` null means the gateway's own request. */
  assign(clientId: JsonRpcId | null): JsonRpcId {
    let id: JsonRpcId;
    if (clientId !== null && !this.inFlight.has(clientId) && !(typeof clientId === "string" && clientId.startsWith(GATEWAY_ID_PREFIX))) id = clientId;
    else id = `${GATEWAY_ID_PREFIX}${REPLICA_ID}:${this.next++}`;
    this.inFlight.set(id, clientId);
    return id;
  }

  release(upstreamId: JsonRpcId): void {
    this.inFlight.delete(upstreamId);
  }

  /** The agent's answer: its own id back (a new object only when the id was replaced). */
  restore(answer: JsonRpcResponse, upstreamId: JsonRpcId, clientId: JsonRpcId | null): JsonRpcResponse {
    return upstreamId === clientId || clientId === null ? answer : { ...answer, id: clientId };
  }

  /** An agent cancels by its own request id; the upstream knows the request by ours. */
  translateCancellation<M extends JsonRpcNotification | JsonRpcResponse | JsonRpcMessage>(message: M): M {
    if (!("method" in message) || message.method !== "notifications/cancelled") return message;
    const clientId = message.params?.requestId;
    for (const [upstreamId, owner] of this.inFlight) {
      if (owner !== null && owner === clientId) return upstreamId === clientId ? message : { ...message, params: { ...message.params, requestId: upstreamId } };
    }
    return message;
  }
}
