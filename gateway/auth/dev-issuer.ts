/**
 * The development issuer behind `portcullis token` and `make run`. NOT for production: keys sit in
 * a local directory, anyone who can read it can mint any identity, and there is no login.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import jwt from "jsonwebtoken";

export interface DevKeys {
  privateKeyPem: string;
  publicKeyPem: string;
  /** RFC 7638 JWK thumbprint of the public key. */
  kid: string;
}

const PRIVATE_FILE = "dev-issuer.key.pem";
const PUBLIC_FILE = "dev-issuer.pub.pem";

/**
 * Loads the development key pair from `dir`, creating the directory (0700) and an RSA-2048 pair
 * (files 0600) on first use. Safe against two processes racing on first use: the private key is
 * published with link(2), which fails if another process got there first, and both then read the
 * same file.
 */
export async function ensureDevKeys(dir: string): Promise<DevKeys> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const privatePath = join(dir, PRIVATE_FILE);
  let privateKeyPem = await readIfExists(privatePath);
  if (privateKeyPem === null) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const temp = join(dir, `.${PRIVATE_FILE}.${process.pid}.${randomUUID()}`);
    await writeFile(temp, pem, { mode: 0o600, flag: "wx" });
    try {
      await link(temp, privatePath);
    } catch (err) {
      if (!isCode(err, "EEXIST")) throw err;
    } finally {
      await unlink(temp);
    }
    privateKeyPem = await readFile(privatePath, "utf8");
  }

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
  } catch {
    throw new Error(`${privatePath} is not a PEM private key; delete it to generate a new development key`);
  }
  if (privateKey.asymmetricKeyType !== "rsa") {
    throw new Error(`${privatePath} holds a ${String(privateKey.asymmetricKeyType)} key; the development issuer signs RS256 and needs RSA`);
  }
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ format: "pem", type: "spki" }).toString();
  // The public half is a convenience copy; the private file stays the single source of truth.
  await writeFile(join(dir, PUBLIC_FILE), publicKeyPem, { mode: 0o600, flag: "wx" }).catch((err: unknown) => {
    if (!isCode(err, "EEXIST")) throw err;
  });
  return { privateKeyPem, publicKeyPem, kid: jwkThumbprint(publicKey) };
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an RSA or EC public key. */
export function jwkThumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: "jwk" });
  // Required members only, in lexicographic order, no whitespace (RFC 7638 §3.2).
  const canonical =
    jwk.kty === "RSA"
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash("sha256").update(JSON.stringify(canonical)).digest("base64url");
}

export interface MintTokenOptions {
  privateKeyPem: string;
  kid: string;
  issuer: string;
  audience: string | string[];
  sub: string;
  roles?: string[];
  scopes?: string[];
  clientId?: string;
  ttlSeconds: number;
  /** Merged under the standard claims: iss, aud, sub, iat, exp and jti always win. */
  extraClaims?: Record<string, unknown>;
  /** Milliseconds since the epoch; defaults to the system clock. */
  now?: number;
}

/** An RS256 access token (typ at+jwt, RFC 9068) from the development key. */
export function mintToken(options: MintTokenOptions): string {
  if (options.sub.length === 0) throw new Error("sub must not be empty");
  if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds <= 0) {
    throw new Error(`ttlSeconds must be a positive whole number, got ${options.ttlSeconds}`);
  }
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  const payload: Record<string, unknown> = { ...options.extraClaims };
  if (options.roles !== undefined) payload["roles"] = options.roles;
  if (options.scopes !== undefined) payload["scope"] = options.scopes.join(" ");
  if (options.clientId !== undefined) payload["client_id"] = options.clientId;
  Object.assign(payload, {
    iss: options.issuer,
    aud: options.audience,
    sub: options.sub,
    iat,
    exp: iat + options.ttlSeconds,
    jti: randomUUID(),
  });
  return jwt.sign(payload, options.privateKeyPem, {
    algorithm: "RS256",
    header: { alg: "RS256", kid: options.kid, typ: "at+jwt" },
  });
}

export interface JwksDocument {
  keys: Array<{ kty: string; kid: string; use: "sig"; alg: string; [member: string]: unknown }>;
}

export function jwksDocument(publicKeyPem: string, kid: string): JwksDocument {
  const jwk = createPublicKey(publicKeyPem).export({ format: "jwk" });
  return { keys: [{ ...jwk, kty: jwk.kty ?? "RSA", kid, use: "sig", alg: "RS256" }] };
}

export interface DevIssuerOptions {
  /** Loopback only. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  keyDir: string;
  /** Defaults to the server's own URL, e.g. http://127.0.0.1:8090. */
  issuer?: string;
}

export interface DevIssuer {
  url: string;
  issuer: string;
  jwksUri: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * Serves the development key's JWKS and discovery documents. There are deliberately no authorize
 * or token endpoints: development tokens are minted by `portcullis token`, so the metadata only
 * names the issuer and its keys.
 */
export async function startDevIssuer(options: DevIssuerOptions): Promise<DevIssuer> {
  if (!LOOPBACK.has(options.host)) {
    throw new Error(`the development issuer listens on loopback only (127.0.0.1), not ${options.host}`);
  }
  const keys = await ensureDevKeys(options.keyDir);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const issuer = options.issuer ?? url;
  const jwksUri = `${url}/.well-known/jwks.json`;
  const jwks = JSON.stringify(jwksDocument(keys.publicKeyPem, keys.kid));
  const metadata = JSON.stringify({
    issuer,
    jwks_uri: jwksUri,
    response_types_supported: [],
    grant_types_supported: [],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256"],
    token_endpoint_auth_methods_supported: ["none"],
  });
  const documents = new Map([
    ["/.well-known/jwks.json", jwks],
    ["/.well-known/openid-configuration", metadata],
    ["/.well-known/oauth-authorization-server", metadata],
  ]);

  server.on("request", (req, res) => {
    const path = new URL(req.url ?? "/", url).pathname;
    const body = documents.get(path);
    if (body === undefined) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" }).end('{"error":"method_not_allowed"}');
    } else {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" }).end(body);
    }
  });

  return { url, issuer, jwksUri, close: () => closeServer(server) };
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "45s" | "30m" | "1h" | "2d" → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  const amount = match === null ? Number.NaN : Number(match[1]);
  const unit = match === null ? undefined : UNIT_SECONDS[match[2] ?? ""];
  if (unit === undefined || !Number.isSafeInteger(amount) || amount <= 0) {
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: expected a positive whole number followed by s, m, h or d (e.g. 45s, 30m, 1h, 2d)`,
    );
  }
  return amount * unit;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isCode(err, "ENOENT")) return null;
    throw err;
  }
}

function isCode(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
