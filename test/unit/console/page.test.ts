import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/**
 * The page script writes agent-controlled text (tool names, arguments, reasons) into the page. It
 * must only ever do so as text: these checks fail on any API that parses a string as markup or code.
 * (The browser test shows the effect; this one keeps a future edit from reaching for one.)
 */
const ROOT = new URL("../../../../", import.meta.url);
const source = readFileSync(new URL("gateway/console/browser/console.ts", ROOT), "utf8");
const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");

describe("console page script", () => {
  const forbidden: Array<{ note: string; pattern: RegExp }> = [
    { note: "innerHTML", pattern: /\.innerHTML\b/ },
    { note: "outerHTML", pattern: /\.outerHTML\b/ },
    { note: "insertAdjacentHTML", pattern: /insertAdjacentHTML/ },
    { note: "document.write", pattern: /document\.write/ },
    { note: "DOMParser / createContextualFragment", pattern: /DOMParser|createContextualFragment/ },
    { note: "eval / new Function / string timers", pattern: /\beval\(|new Function\(|setTimeout\(\s*["'`]|setInterval\(\s*["'`]/ },
    { note: "a style attribute (the CSP forbids inline style)", pattern: /setAttribute\(\s*["']style|\.style\./ },
    { note: "an event handler attribute", pattern: /setAttribute\(\s*["']on/ },
    { note: "localStorage (the token belongs in sessionStorage only)", pattern: /localStorage/ },
  ];
  for (const f of forbidden) {
    it(`never uses ${f.note}`, () => {
      assert.ok(!f.pattern.test(code), `gateway/console/browser/console.ts uses ${f.note}`);
    });
  }

  it("still writes text (so the checks above read the right file)", () => {
    assert.ok(/\.textContent\s*=/.test(code));
  });
});
