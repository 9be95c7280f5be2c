package mcp.constraints_test

import data.mcp.constraints

call(tool, args) := {"request": {"method": "tools/call", "tool": tool, "arguments": args}}

reasons(tool, args) := {v.reason | some v in vs} if {
	vs := constraints.violations with input as call(tool, args)
}

test_path_tricks_are_refused if {
	cases := [
		{"note": "dot-dot", "path": "/data/out/../etc/passwd"},
		{"note": "double slash", "path": "/data/out//etc"},
		{"note": "dot segment", "path": "/data/out/./x"},
		{"note": "encoded dots", "path": "/data/out/%2e%2e/etc"},
		{"note": "encoded slash", "path": "/data/out/..%2fetc"},
		{"note": "backslash", "path": "/data/out/..\\etc"},
		{"note": "NUL", "path": "/data/out/x\u0000.txt"},
		{"note": "trailing dot-dot", "path": "/data/out/x/.."},
		{"note": "trailing dot", "path": "/data/out/."},
		{"note": "root without slash", "path": "/data/outside"},
		{"note": "not a string", "path": ["/data/out/x"]},
	]
	every case in cases {
		reasons("write_file", {"path": case.path}) == {"argument path fails path constraint"}
	}
}

test_paths_under_a_root_are_allowed if {
	every path in ["/data/out/x.csv", "/tmp/scratch/a/b/", "/data/out/..hidden", "/data/out/"] {
		reasons("write_file", {"path": path}) == set()
	}
}

test_required_argument_must_be_present if {
	reasons("write_file", {}) == {"argument path is required"}
	v := constraints.violations with input as call("write_file", {})
	v == {{"reason": "argument path is required", "message": "write_file is limited to /data/out and /tmp/scratch"}}
}

test_url_host_allow_list if {
	cases := [
		{"note": "listed host", "url": "https://api.example.com/v1/x", "ok": true},
		{"note": "wildcard subdomain", "url": "https://eu.docs.example.com", "ok": true},
		{"note": "host case and port", "url": "HTTPS://API.Example.com:443/x?q=1", "ok": true},
		{"note": "plain http refused", "url": "http://api.example.com/", "ok": false},
		{"note": "suffix trick", "url": "https://api.example.com.evil.net/", "ok": false},
		{"note": "userinfo trick", "url": "https://api.example.com@evil.net/", "ok": false},
		{"note": "wildcard needs a label", "url": "https://docs.example.com/", "ok": false},
		{"note": "other host", "url": "https://evil.net/", "ok": false},
		{"note": "no scheme", "url": "api.example.com/x", "ok": false},
		{"note": "backslash", "url": "https://evil.net\\@api.example.com/", "ok": false},
	]
	every case in cases {
		ok := count(reasons("fetch_url", {"url": case.url})) == 0
		ok == case.ok
	}
}

# readonly_sql: readonly_sql_test.rego

test_number_bounds if {
	cases := [
		{"note": "in range", "limit": 10, "ok": true},
		{"note": "lower bound", "limit": 1, "ok": true},
		{"note": "upper bound", "limit": 1000, "ok": true},
		{"note": "too small", "limit": 0, "ok": false},
		{"note": "too large", "limit": 1001, "ok": false},
		{"note": "fraction", "limit": 2.5, "ok": false},
		{"note": "string", "limit": "10", "ok": false},
	]
	every case in cases {
		ok := count(reasons("query", {"sql": "select 1", "limit": case.limit})) == 0
		ok == case.ok
	}
}

test_string_pattern if {
	reasons("write_file", {"path": "/data/out/a", "name": "report-1.csv"}) == set()
	reasons("write_file", {"path": "/data/out/a", "name": "../x"}) == {"argument name fails pattern constraint"}
}

test_string_pattern_length if {
	name := concat("", ["a" | some _ in numbers.range(1, 129)])
	reasons("write_file", {"path": "/data/out/a", "name": name}) == {"argument name fails pattern constraint"}
}

test_default_message_names_the_argument if {
	m := constraints.default_message({"argument": "x"}) with input as call("t", {})
	m == "argument x of t is not allowed"
}

test_lists_and_other_tools_have_no_constraints if {
	v := constraints.violations with input as {"request": {"method": "tools/list", "tool": "query", "arguments": null}}
	v == set()
	reasons("echo", {"text": "; drop table"}) == set()
}
