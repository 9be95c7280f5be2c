package mcp.result_test

import data.mcp.result

# Fake credentials, shaped like the real ones (the AWS pair is AWS's own documentation example).
aws_key_id := "AKIAIOSFODNN7EXAMPLE"

aws_secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

github_pat := "ghp_0123456789abcdefghijABCDEFGHIJklmnop"

slack_bot := "xoxb-1234567890-0987654321-FAKEfakeFAKEfake"

google_key := "AIzaSyA-FAKE_fake0123456789abcdefghijkl"

stripe_key := "sk_live_FAKE0123456789abcdefgh"

jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW5vdC1yZWFs"

pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfakefakefake\nZmFrZQ==\n-----END RSA PRIVATE KEY-----"

# The decision input plus the result, as the gateway builds it.
inp(res) := {
	"agent": {"sub": "alice", "roles": ["analyst"], "scopes": ["mcp:tools"]},
	"request": {"method": "tools/call", "server": "demo", "tool": "read_file", "arguments": {}},
	"tool": null,
	"result": res,
}

text_result(text) := {"content": [{"type": "text", "text": text}], "isError": false}

decide(res) := d if {
	d := result.decision with input as inp(res)
}

# The substrings a decision blanks in the first text content, by kind.
matches(res) := {[r.kind, r.match] |
	some r in decide(res).redact
	r.pointer == "/content/0/text"
}

test_each_pattern_blanks_only_the_secret_inside_prose if {
	cases := [
		{"note": "AWS access key id", "kind": "aws_access_key_id", "secret": aws_key_id, "text": concat("", ["Use ", aws_key_id, " for the backup bucket."])},
		{"note": "AWS temporary key id", "kind": "aws_access_key_id", "secret": "ASIAXXXXXXXXXXXXXXXX", "text": "session key ASIAXXXXXXXXXXXXXXXX expires soon"},
		{"note": "AWS secret after its label", "kind": "aws_secret_access_key", "secret": aws_secret, "text": concat("", ["[default]\naws_secret_access_key = ", aws_secret, "\nregion = eu-west-1"])},
		{"note": "AWS secret in JSON text", "kind": "aws_secret_access_key", "secret": aws_secret, "text": concat("", ["{\"AwsSecretAccessKey\": \"", aws_secret, "\"}"])},
		{"note": "GitHub personal token", "kind": "github_token", "secret": github_pat, "text": concat("", ["git clone https://", github_pat, "@github.com/o/r"])},
		{"note": "GitHub fine-grained token", "kind": "github_token", "secret": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "text": "token github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz in CI"},
		{"note": "GitHub app token", "kind": "github_token", "secret": "ghs_0123456789abcdefghijABCDEFGHIJklmnop", "text": "installation ghs_0123456789abcdefghijABCDEFGHIJklmnop"},
		{"note": "Slack bot token", "kind": "slack_token", "secret": slack_bot, "text": concat("", ["SLACK=", slack_bot, " # bot"])},
		{"note": "Google API key", "kind": "google_api_key", "secret": google_key, "text": concat("", ["maps?key=", google_key, "&q=x"])},
		{"note": "Stripe live key", "kind": "stripe_secret_key", "secret": stripe_key, "text": concat("", ["charge with ", stripe_key, "."])},
		{"note": "JWT", "kind": "jwt", "secret": jwt, "text": concat("", ["Authorization: Bearer ", jwt])},
		{"note": "PEM key between prose", "kind": "private_key", "secret": pem, "text": concat("", ["Here is the key:\n", pem, "\nDo not share it."])},
		{"note": "PEM key cut off", "kind": "private_key", "secret": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", "text": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk"},
		{"note": "unlabelled PKCS#8 key", "kind": "private_key", "secret": "-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----", "text": "x -----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY----- y"},
		{"note": "password assignment", "kind": "secret_assignment", "secret": "hunter2hunter2", "text": "login with password=hunter2hunter2 then"},
		{"note": "api_key in YAML", "kind": "secret_assignment", "secret": "abc123xyz789", "text": "service:\n  api_key: abc123xyz789\n"},
		{"note": "client secret in JSON", "kind": "secret_assignment", "secret": "s3cr3t-value", "text": "{\"client_secret\":\"s3cr3t-value\"}"},
	]
	every case in cases {
		[case.kind, case.secret] in matches(text_result(case.text))
		decide(text_result(case.text)).allow
	}
}

test_lookalikes_are_left_alone if {
	cases := [
		{"note": "AKIA too short", "text": "AKIA12345"},
		{"note": "AKIA inside a longer word", "text": "XAKIAIOSFODNN7EXAMPLEX"},
		{"note": "40 characters without the label", "text": aws_secret},
		{"note": "ghp_ too short", "text": "ghp_short"},
		{"note": "xox without a type letter", "text": "xoxz-1234567890-abcdef"},
		{"note": "AIza too short", "text": "AIzaShort"},
		{"note": "a Stripe test key", "text": "sk_test_0123456789abcdefgh"},
		{"note": "a Stripe publishable key", "text": "pk_live_0123456789abcdefgh"},
		{"note": "one JWT segment", "text": "eyJhbGciOiJIUzI1NiJ9 alone"},
		{"note": "a public key", "text": "-----BEGIN PUBLIC KEY-----\nMFkwEw\n-----END PUBLIC KEY-----"},
		{"note": "a certificate", "text": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{"note": "a short password value", "text": "password: abc"},
		{"note": "the word password in prose", "text": "Reset your password from the settings page."},
		{"note": "an empty string", "text": ""},
	]
	every case in cases {
		d := decide(text_result(case.text))
		d == {"allow": true, "reasons": []}
	}
}

test_clean_result_passes_untouched if {
	res := {
		"content": [
			{"type": "text", "text": "Q3 revenue was 4.2M, up 8% on Q2."},
			{"type": "resource", "resource": {"uri": "file:///data/q3.csv", "text": "month,revenue\njuly,1.3\n"}},
		],
		"structuredContent": {"rows": [{"month": "july", "revenue": 1.3}], "tokens_used": 42, "token": null},
		"isError": false,
	}
	decide(res) == {"allow": true, "reasons": []}
}

test_nested_structured_content if {
	res := {
		"content": [{"type": "text", "text": "done"}],
		"structuredContent": {"deploy": {"targets": [{"name": "web"}, {"env": {"AWS_KEY": aws_key_id, "note": concat("", ["rotate ", github_pat, " monthly"])}}]}},
	}
	d := decide(res)
	d.allow
	d.redact == [
		{"kind": "aws_access_key_id", "match": aws_key_id, "pointer": "/structuredContent/deploy/targets/1/env/AWS_KEY"},
		{"kind": "github_token", "match": github_pat, "pointer": "/structuredContent/deploy/targets/1/env/note"},
	]
	d.reasons == [
		"aws_access_key_id at /structuredContent/deploy/targets/1/env/AWS_KEY",
		"github_token at /structuredContent/deploy/targets/1/env/note",
	]
}

test_secret_named_fields_are_redacted_whole if {
	res := {"structuredContent": {"user": {"Password": "correct horse", "name": "bob"}, "creds": [{"api_key": "k"}], "token": ""}}
	d := decide(res)
	d.redact == [
		{"kind": "secret_field", "pointer": "/structuredContent/creds/0/api_key"},
		{"kind": "secret_field", "pointer": "/structuredContent/user/Password"},
	]
}

test_pointers_escape_tilde_and_slash if {
	res := {"structuredContent": {"a/b": {"c~d": concat("", ["id ", aws_key_id])}}}
	[r] := decide(res).redact
	r.pointer == "/structuredContent/a~1b/c~0d"
}

test_every_hit_of_a_kind_is_listed if {
	text := concat("", [aws_key_id, " and AKIAABCDEFGHIJKLMNOP"])
	matches(text_result(text)) == {["aws_access_key_id", aws_key_id], ["aws_access_key_id", "AKIAABCDEFGHIJKLMNOP"]}
}

test_the_audit_reasons_never_carry_the_secret if {
	d := decide(text_result(concat("", ["key ", aws_key_id, " password=", "hunter2hunter2"])))
	every reason in d.reasons {
		not contains(reason, aws_key_id)
		not contains(reason, "hunter2hunter2")
	}
	not d.message
}

test_private_key_allowed_with_redaction_by_default if {
	d := decide(text_result(pem))
	d.allow
	[{"kind": "private_key", "match": pem, "pointer": "/content/0/text"}] == d.redact
}

test_block_on_withholds_the_result if {
	d := decide(text_result(concat("", ["key:\n", pem]))) with data.portcullis.result_block_on as ["private_key"]
	d.allow == false
	d.message == "the result was withheld by policy: it contains private_key"
	d.reasons == ["private_key at /content/0/text"]
}

test_block_on_ignores_kinds_not_found if {
	d := decide(text_result(concat("", ["id ", aws_key_id]))) with data.portcullis.result_block_on as ["private_key"]
	d.allow
}

test_operators_add_patterns_through_data if {
	patterns := object.union(data.portcullis.result_patterns, {"employee_id": {"regex": `\bEMP-[0-9]{6}\b`, "hints": ["emp-"], "example": "EMP-123456"}})
	d := decide(text_result("ticket for EMP-004211 closed")) with data.portcullis.result_patterns as patterns
	d.redact == [{"kind": "employee_id", "match": "EMP-004211", "pointer": "/content/0/text"}]
}

test_a_pattern_runs_only_where_a_hint_is_found if {
	patterns := {"digits": {"regex": `[0-9]{4}`, "hints": ["pin"], "example": "pin 0000"}}
	d1 := decide(text_result("pin 1234")) with data.portcullis.result_patterns as patterns
	d1.redact == [{"kind": "digits", "match": "1234", "pointer": "/content/0/text"}]
	d2 := decide(text_result("room 1234")) with data.portcullis.result_patterns as patterns
	not d2.redact
}

test_hints_match_whatever_the_case if {
	patterns := {"shout": {"regex": `(?i)secret`, "hints": ["secret"], "example": "Secret"}}
	d := decide(text_result("TOP SECRET")) with data.portcullis.result_patterns as patterns
	d.redact == [{"kind": "shout", "match": "SECRET", "pointer": "/content/0/text"}]
}

test_a_pattern_without_hints_runs_on_every_string if {
	patterns := {"digits": {"regex": `[0-9]{4}`, "example": "0000"}}
	d := decide(text_result("room 1234")) with data.portcullis.result_patterns as patterns
	d.redact == [{"kind": "digits", "match": "1234", "pointer": "/content/0/text"}]
}

test_a_broken_pattern_blocks_the_results_it_runs_on if {
	cases := [
		{"note": "not RE2", "spec": {"regex": "(unclosed", "hints": ["q3"], "example": "(unclosed"}},
		{"note": "not a string", "spec": {"regex": 7, "hints": ["q3"], "example": "7"}},
		{"note": "no example", "spec": {"regex": "Q9", "hints": ["q3"]}},
		{"note": "an example it does not find", "spec": {"regex": "Q4", "hints": ["q3"], "example": "Q3"}},
	]
	every case in cases {
		patterns := object.union(data.portcullis.result_patterns, {"broken": case.spec})
		d := decide(text_result("Q3 revenue")) with data.portcullis.result_patterns as patterns
		d.allow == false
		d.message == "the result was withheld by policy: a result pattern is misconfigured"
		d.reasons == ["result pattern broken does not find its example (not valid RE2, or the example no longer matches)"]
	}
}

test_a_broken_pattern_that_does_not_run_changes_nothing if {
	patterns := object.union(data.portcullis.result_patterns, {"broken": {"regex": "(unclosed", "hints": ["zzz"]}})
	d := decide(text_result("Q3 revenue")) with data.portcullis.result_patterns as patterns
	d == {"allow": true, "reasons": []}
}

test_a_found_kind_to_block_wins_over_a_broken_pattern_message if {
	patterns := object.union(data.portcullis.result_patterns, {"broken": {"regex": "(unclosed", "hints": ["key"]}})
	d := decide(text_result(pem)) with data.portcullis.result_patterns as patterns
		with data.portcullis.result_block_on as ["private_key"]
	d.allow == false
	d.message == "the result was withheld by policy: it contains private_key"
}

test_the_entrypoint_is_this_decision if {
	res := text_result(concat("", ["id ", aws_key_id]))
	data.mcp.authz.result == decide(res) with input as inp(res)
}

# Also run by `make policy-test` on patterns an operator adds to data.json.
test_every_pattern_finds_its_example_through_its_hints if {
	every kind, spec in data.portcullis.result_patterns {
		count(spec.hints) > 0
		every hint in spec.hints {
			hint == lower(hint)
		}
		d := decide(text_result(spec.example))
		d.allow
		kind in {r.kind | some r in d.redact}
	}
}
