import assert from "node:assert/strict";
import {
  authFailureResponse,
  protectedResourceMetadata,
  publicErrorDescription,
  resourceMetadataPath,
  resourceMetadataUrl,
  wwwAuthenticate,
  type AuthFailureCode,
} from "../../../gateway/auth/index.js";

const PRM = "https://gw.test/.well-known/oauth-protected-resource/mcp/files";

describe("wwwAuthenticate", () => {
  it("renders a bare challenge with only resource_metadata", () => {
    assert.equal(wwwAuthenticate({ resourceMetadataUrl: PRM }), `Bearer resource_metadata="${PRM}"`);
  });

  it("renders error, description and scope as quoted parameters", () => {
    const value = wwwAuthenticate({
      resourceMetadataUrl: PRM,
      error: "insufficient_scope",
      errorDescription: "Need more scope",
      scope: ["files:read", "files:write"],
    });
    assert.equal(
      value,
      `Bearer resource_metadata="${PRM}", error="insufficient_scope", error_description="Need more scope", scope="files:read files:write"`,
    );
  });

  it("cannot be broken by quotes, backslashes or CR/LF in the description", () => {
    const value = wwwAuthenticate({
      resourceMetadataUrl: PRM,
      error: "invalid_token",
      errorDescription: 'bad "token"\\\r\nSet-Cookie: x=1, Basic realm="evil"',
    });
    assert.doesNotMatch(value, /[\r\n\\]/);
    assert.equal((value.match(/"/g) ?? []).length, 6, "only the three parameters' own quotes");
    assert.match(value, /error_description="bad token Set-Cookie: x=1, Basic realm= evil"$/);
  });

  it("replaces non-ASCII characters, which RFC 6750 forbids in error_description", () => {
    const value = wwwAuthenticate({ resourceMetadataUrl: PRM, error: "invalid_token", errorDescription: "caf\u00e9 \u2603 ok" });
    assert.match(value, /error_description="caf ok"$/);
  });

  it("drops scope tokens with characters RFC 6750 does not allow, and duplicates", () => {
    const value = wwwAuthenticate({ resourceMetadataUrl: PRM, scope: 'a b a c"d e\\f' });
    assert.match(value, /scope="a b"$/);
  });

  it("omits an empty description and an empty scope list", () => {
    assert.equal(
      wwwAuthenticate({ resourceMetadataUrl: PRM, error: "invalid_request", errorDescription: "", scope: [] }),
      `Bearer resource_metadata="${PRM}", error="invalid_request"`,
    );
  });
});

describe("protected resource metadata", () => {
  it("has the RFC 9728 shape with header-only bearer methods", () => {
    const document = protectedResourceMetadata({
      resource: "https://gw.test/mcp/files",
      authorizationServers: ["https://idp.test/"],
      scopesSupported: ["mcp:tools", "mcp:tools"],
      resourceName: "files via portcullis",
    });
    assert.deepEqual(JSON.parse(JSON.stringify(document)), {
      resource: "https://gw.test/mcp/files",
      authorization_servers: ["https://idp.test/"],
      scopes_supported: ["mcp:tools"],
      bearer_methods_supported: ["header"],
      resource_name: "files via portcullis",
    });
  });

  it("leaves resource_name out when not given", () => {
    const document = protectedResourceMetadata({ resource: "r", authorizationServers: ["a"], scopesSupported: [] });
    assert.equal("resource_name" in document, false);
  });

  it("refuses to describe a resource without an authorization server", () => {
    assert.throws(() => protectedResourceMetadata({ resource: "r", authorizationServers: [], scopesSupported: [] }), /at least one/);
  });

  const paths: Array<[string, string]> = [
    ["/mcp/demo", "/.well-known/oauth-protected-resource/mcp/demo"],
    ["/mcp/demo/", "/.well-known/oauth-protected-resource/mcp/demo"],
    ["mcp", "/.well-known/oauth-protected-resource/mcp"],
    ["/", "/.well-known/oauth-protected-resource"],
    ["", "/.well-known/oauth-protected-resource"],
  ];
  for (const [input, expected] of paths) {
    it(`puts the well-known segment before the path for ${JSON.stringify(input)}`, () => {
      assert.equal(resourceMetadataPath(input), expected);
    });
  }

  it("derives the metadata URL from a resource URI", () => {
    assert.equal(resourceMetadataUrl("https://gw.test:8443/mcp/files"), "https://gw.test:8443/.well-known/oauth-protected-resource/mcp/files");
  });
});

describe("authFailureResponse", () => {
  it("answers a missing token with a bare 401 challenge (no error code)", () => {
    const response = authFailureResponse("token_missing", PRM);
    assert.equal(response.status, 401);
    assert.equal(response.headers["WWW-Authenticate"], `Bearer resource_metadata="${PRM}"`);
  });

  it("answers an expired token with invalid_token and a public description", () => {
    const response = authFailureResponse("token_expired", PRM, "mcp:tools");
    assert.equal(response.status, 401);
    assert.equal(
      response.headers["WWW-Authenticate"],
      `Bearer resource_metadata="${PRM}", error="invalid_token", error_description="The access token expired", scope="mcp:tools"`,
    );
    assert.deepEqual(response.body, { error: "invalid_token", error_description: "The access token expired" });
  });

  it("answers an unreachable IdP with 503, not a 401 that would send clients to re-authorise", () => {
    const response = authFailureResponse("jwks_unavailable", PRM);
    assert.equal(response.status, 503);
    assert.equal(response.headers["WWW-Authenticate"], undefined);
  });

  it("does not tell agents which signature or key check failed", () => {
    const internal: AuthFailureCode[] = ["token_bad_signature", "token_bad_algorithm", "token_unknown_key", "token_bad_claims"];
    for (const code of internal) assert.equal(publicErrorDescription(code), "The access token is invalid");
  });
});
