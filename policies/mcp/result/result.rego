# METADATA
# title: Policy over results
# description: |
#   The decision for mcp/authz/result (docs/result-policy.md): the gateway evaluates it on a tool's
#   result before the agent sees it, with the decision input plus input.result (the CallToolResult
#   as the upstream returned it). Every string of the result, at any depth (content[].text,
#   structuredContent, resource text, _meta), is searched for credential-looking text with the
#   patterns of data.portcullis.result_patterns; each hit is redacted in place, and only the secret
#   itself: {"pointer": "/content/0/text", "match": "AKIA…", "kind": "aws_access_key_id"} blanks
#   that substring and leaves the prose around it. A string under a key named in
#   result_secret_keys is redacted whole. A kind listed in result_block_on withholds the whole
#   result instead (allow false, with a message for the agent).
package mcp.result

cfg := data.portcullis

# METADATA
# title: decision
# description: Always defined, so the gateway never blocks a result for want of an answer.
decision := object.union_n([
	{"allow": allow, "reasons": reasons},
	redact_field,
	message_field,
])

default allow := false

allow if {
	count(blocking_kinds) == 0
	count(invalid_patterns) == 0
}

# ------------------------------------------------------------------ findings

# A pattern hit: the substring to blank is the whole match, or the capture group `group` names
# (a label such as "aws_secret_access_key = " stays readable).
findings contains {"pointer": pointer(path), "match": secret, "kind": kind} if {
	walk(input.result, [path, value])
	some kind in candidates[path]
	spec := cfg.result_patterns[kind]
	some groups in regex.find_all_string_submatch_n(spec.regex, value, -1)
	secret := groups[object.get(spec, "group", 0)]
	secret != "" # an optional group that did not take part
}

# A string value under a secret-looking key (any depth, any case) is redacted whole.
findings contains {"pointer": pointer(path), "kind": "secret_field"} if {
	walk(input.result, [path, value])
	is_string(value)
	value != ""
	key := path[count(path) - 1]
	is_string(key)
	lower(key) in cfg.result_secret_keys
}

# For each string of the result (by path), the patterns worth running on it: those with one of
# their `hints` in it (hints are lowercase and compared with the lowercased string), and those
# without hints. Under wasm each expression is compiled once per evaluation that runs it (about
# 0.2–1.5 ms) where a `contains` costs next to nothing, so hints keep a result without
# credentials cheap. A rule, so it is computed once per evaluation.
candidates[path] := kinds if {
	walk(input.result, [path, value])
	is_string(value)
	folded := lower(value)
	kinds := {kind |
		some kind, spec in cfg.result_patterns
		hinted(spec, folded)
	}
	count(kinds) > 0
}

hinted(spec, _) if not spec.hints

hinted(spec, folded) if {
	some hint in spec.hints
	contains(folded, hint)
}

# Every pattern that runs must find its own `example`: an expression RE2 cannot compile finds
# nothing under wasm (no error), so a typo in data.json would otherwise switch the pattern off
# without a word. Checked only for patterns that run, where the compilation is already paid for.
# A broken pattern blocks the results it runs on, and the reason names it.
invalid_patterns contains kind if {
	some kinds in candidates
	some kind in kinds
	not finds_example(cfg.result_patterns[kind])
}

finds_example(spec) if {
	is_string(spec.example)
	count(regex.find_all_string_submatch_n(spec.regex, spec.example, 1)) == 1
}

blocking_kinds contains finding.kind if {
	some finding in findings
	finding.kind in cfg.result_block_on
}

# ------------------------------------------------------------------ the decision's fields

# Audited, never shown to the agent: pointers and kinds only, never the matched text.
reasons := sort(finding_reasons | pattern_reasons)

finding_reasons contains concat("", [f.kind, " at ", f.pointer]) if {
	some f in findings
}

pattern_reasons contains concat("", ["result pattern ", kind, " does not find its example (not valid RE2, or the example no longer matches)"]) if {
	some kind in invalid_patterns
}

default redact_field := {}

redact_field := {"redact": sort(findings)} if count(findings) > 0

default message_field := {}

message_field := {"message": concat("", ["the result was withheld by policy: it contains ", concat(", ", sort(blocking_kinds))])} if {
	count(blocking_kinds) > 0
}

message_field := {"message": "the result was withheld by policy: a result pattern is misconfigured"} if {
	count(blocking_kinds) == 0
	count(invalid_patterns) > 0
}

# ------------------------------------------------------------------ JSON pointers

# RFC 6901, relative to the result: "~" is written "~0", "/" is written "~1", indices in decimal.
pointer(path) := concat("", [concat("", ["/", segment(p)]) | some p in path])

segment(s) := replace(replace(s, "~", "~0"), "/", "~1") if is_string(s)

segment(n) := format_int(n, 10) if is_number(n)
