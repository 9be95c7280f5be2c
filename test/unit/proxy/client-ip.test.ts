import assert from "node:assert/strict";
import { clientIpResolver, normalizeIp, parseCidr } from "../../../gateway/proxy/client-ip.js";

describe("client IP behind trusted proxies (edge.trustedProxies)", () => {
  const trusted = ["10.0.0.0/8", "192.168.1.7", "fd00::/8"];
  const cases: Array<{ note: string; proxies: string[]; remote: string | undefined; xff: string | string[] | undefined; want: string | null }> = [
    { note: "no trusted proxies: the header is ignored", proxies: [], remote: "203.0.113.9", xff: "1.2.3.4", want: "203.0.113.9" },
    { note: "untrusted peer: its X-Forwarded-For is a lie it could tell", proxies: trusted, remote: "203.0.113.9", xff: "1.2.3.4", want: "203.0.113.9" },
    { note: "trusted peer, one hop: the client it saw", proxies: trusted, remote: "10.1.2.3", xff: "198.51.100.4", want: "198.51.100.4" },
    { note: "spoofed leftmost entries are skipped: the first untrusted from the right wins", proxies: trusted, remote: "10.1.2.3", xff: "6.6.6.6, 198.51.100.4, 192.168.1.7", want: "198.51.100.4" },
    { note: "several headers are one list", proxies: trusted, remote: "10.1.2.3", xff: ["6.6.6.6", "198.51.100.4, 10.9.9.9"], want: "198.51.100.4" },
    { note: "all hops trusted: the leftmost", proxies: trusted, remote: "10.1.2.3", xff: "10.0.0.5, 192.168.1.7", want: "10.0.0.5" },
    { note: "garbage hop stops the walk at the last address vouched for", proxies: trusted, remote: "10.1.2.3", xff: "198.51.100.4, not-an-ip", want: "10.1.2.3" },
    { note: "trusted peer without the header", proxies: trusted, remote: "10.1.2.3", xff: undefined, want: "10.1.2.3" },
    { note: "IPv4-mapped IPv6 peer matches an IPv4 CIDR", proxies: trusted, remote: "::ffff:10.1.2.3", xff: "198.51.100.4", want: "198.51.100.4" },
    { note: "IPv6 proxies and clients", proxies: trusted, remote: "fd00::1", xff: "2001:db8::42", want: "2001:db8::42" },
    { note: "ports and brackets written by some proxies are dropped", proxies: trusted, remote: "10.1.2.3", xff: "[2001:db8::42]:443, 198.51.100.4:5555", want: "198.51.100.4" },
    { note: "no socket address", proxies: trusted, remote: undefined, xff: "1.2.3.4", want: null },
  ];
  for (const c of cases) {
    it(c.note, () => {
      assert.equal(clientIpResolver(c.proxies)(c.remote, c.xff), c.want);
    });
  }

  it("refuses a malformed CIDR at construction", () => {
    assert.throws(() => clientIpResolver(["10.0.0.0/33"]), /edge\.trustedProxies/);
  });

  const cidrs: Array<{ note: string; cidr: string; ok: boolean }> = [
    { note: "IPv4 block", cidr: "10.0.0.0/8", ok: true },
    { note: "single IPv4", cidr: "127.0.0.1", ok: true },
    { note: "IPv6 block", cidr: "::1/128", ok: true },
    { note: "prefix too long", cidr: "1.2.3.4/40", ok: false },
    { note: "two slashes", cidr: "1.2.3.4/8/8", ok: false },
    { note: "hostname", cidr: "proxy.internal", ok: false },
    { note: "non-numeric prefix", cidr: "1.2.3.4/x", ok: false },
  ];
  for (const c of cidrs) {
    it(`parseCidr: ${c.note}`, () => assert.equal(parseCidr(c.cidr) !== null, c.ok));
  }

  it("normalizeIp lowercases IPv6 and unmaps IPv4", () => {
    assert.equal(normalizeIp("::FFFF:1.2.3.4"), "1.2.3.4");
    assert.equal(normalizeIp("2001:DB8::1"), "2001:db8::1");
    assert.equal(normalizeIp("1.2.3"), undefined);
    assert.equal(normalizeIp("0:0::1"), "::1");
    assert.equal(normalizeIp("FE80::1%eth0"), "fe80::1%eth0");
    assert.equal(normalizeIp("::ffff:a00:1"), "10.0.0.1");
    assert.equal(normalizeIp("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  });
});
