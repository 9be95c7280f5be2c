import { readFileSync } from "node:fs";
import {
  AuditChain,
  ed25519PrivateKey,
  KafkaSink,
  kafkaSecurityOptions,
  toOcsf,
  type AuditLogger,
  sensitiveKeyMatcher,
  type KafkaSecurityOptions,
  type KeyMatcher,
} from "../audit/index.js";
import type { GatewayConfig } from "../config/index.js";

/**
 * The audit pieces the composition root builds from config (issue 4 items 3, 4, 6): kept here so
 * gateway.ts only calls them. Each reads its files now, so a bad key or certificate stops the
 * start with the config field named.
 */

/** The instance's hash chain; signed checkpoints when `audit.signing` is set. */
export function auditChainFromConfig(config: GatewayConfig, epoch: string): AuditChain {
  const s = config.audit.signing;
  if (!s) return new AuditChain({ epoch });
  let pem: string;
  try {
    pem = readFileSync(s.privateKey, "utf8");
  } catch (err) {
    throw new Error(`audit.signing.privateKey: cannot read ${s.privateKey} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let key;
  try {
    key = ed25519PrivateKey(pem);
  } catch (err) {
    throw new Error(`audit.signing.privateKey: ${s.privateKey}: ${(err as Error).message}`);
  }
  return new AuditChain({ epoch, signingKey: key, checkpointEvery: s.checkpointEvery, ...(s.keyId ? { keyId: s.keyId } : {}) });
}

/** What AuditContext takes for masking: configured pointers and the key matcher. */
export function auditMaskFromConfig(config: GatewayConfig): { alwaysMask: string[]; maskKeys: KeyMatcher | null } {
  const m = config.audit.mask;
  return { alwaysMask: [...m.paths], maskKeys: sensitiveKeyMatcher({ keys: m.keys, defaultKeys: m.defaultKeys }) };
}

/** kafkajs TLS/SASL options for the audit Kafka sink(s). */
export function auditKafkaSecurity(config: GatewayConfig): KafkaSecurityOptions {
  const k = config.audit.kafka;
  return k ? kafkaSecurityOptions({ ssl: k.ssl, sasl: k.sasl }) : {};
}

/**
 * `audit.kafka.ocsfTopic`: the same events rendered as OCSF API Activity, for SIEMs that ingest
 * OCSF natively. Best effort beside the native topic, which stays the record (chain included).
 */
export function ocsfKafkaSink(config: GatewayConfig, topic: string, logger: AuditLogger): KafkaSink {
  const k = config.audit.kafka!;
  return new KafkaSink({
    brokers: [...k.brokers],
    topic,
    clientId: `${k.clientId}-ocsf`,
    createTopic: k.createTopic ? { ...k.createTopic } : false,
    logger,
    security: auditKafkaSecurity(config),
    encode: (event) => JSON.stringify(toOcsf(event)),
    ...(k.deadLetterFile ? { deadLetterFile: k.deadLetterFile } : {}),
    maxEventBytes: config.audit.maxEventBytes,
  });
}
