import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import type { SASLOptions } from "kafkajs";

/** `audit.kafka.ssl` as configured (validated by the config schema). */
export type KafkaSslConfig =
  | boolean
  | {
      ca?: string | readonly string[] | undefined;
      cert?: string | undefined;
      key?: string | undefined;
      passphrase?: string | undefined;
      servername?: string | undefined;
      rejectUnauthorized: boolean;
    };

export interface KafkaSaslConfig {
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  username: string;
  password: string;
}

/** What kafkajs's `Kafka` constructor takes for TLS and SASL. */
export interface KafkaSecurityOptions {
  ssl?: ConnectionOptions | boolean;
  sasl?: SASLOptions;
}

/**
 * Maps the config to kafkajs options, reading the PEM files now so that a missing file fails the
 * start with the config field in the message, not a TLS handshake later. `read` is a seam for tests.
 */
export function kafkaSecurityOptions(
  cfg: { ssl?: KafkaSslConfig | undefined; sasl?: KafkaSaslConfig | undefined },
  read: (path: string) => string = (p) => readFileSync(p, "utf8"),
): KafkaSecurityOptions {
  const out: KafkaSecurityOptions = {};
  if (cfg.ssl !== undefined && cfg.ssl !== false) {
    if (cfg.ssl === true) {
      out.ssl = true;
    } else {
      const s = cfg.ssl;
      const file = (field: string, path: string): string => {
        try {
          return read(path);
        } catch (err) {
          throw new Error(`audit.kafka.ssl.${field}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
        }
      };
      const tls: ConnectionOptions = { rejectUnauthorized: s.rejectUnauthorized };
      if (s.ca !== undefined) tls.ca = (typeof s.ca === "string" ? [s.ca] : [...s.ca]).map((p) => file("ca", p));
      if (s.cert !== undefined) tls.cert = file("cert", s.cert);
      if (s.key !== undefined) tls.key = file("key", s.key);
      if (s.passphrase !== undefined) tls.passphrase = s.passphrase;
      if (s.servername !== undefined) tls.servername = s.servername;
      out.ssl = tls;
    }
  }
  if (cfg.sasl) {
    const { mechanism, username, password } = cfg.sasl;
    // kafkajs's SASLOptions is a union keyed by the mechanism literal: one branch per literal.
    out.sasl =
      mechanism === "plain"
        ? { mechanism, username, password }
        : mechanism === "scram-sha-256"
          ? { mechanism, username, password }
          : { mechanism, username, password };
  }
  return out;
}
