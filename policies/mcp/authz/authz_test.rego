package mcp.authz_test

import data.mcp.authz

# ------------------------------------------------------------------ fixtures

all_scopes := ["mcp:tools", "mcp:resources", "mcp:prompts"]

agent(roles, scopes) := {
	"sub": "alice",
	"iss": "https://idp.example.com/",
	"client_id": "cli",
	"scopes": scopes,
	"roles": roles,
	"claims": {},
}

analyst := agent(["analyst"], all_scopes)

admin := agent(["admin"], all_scopes)

request(method, server, fields) := object.union(
	{
		"method": method,
		"server": server,
		"tool": null,
		"arguments": null,
		"resource": null,
		"prompt": null,
		"session_id": "s1",
		"protocol_version": "2025-11-25",
		"source_ip": "127.0.0.1",
		"time": "2026-11-24T10:00:00.000Z",
	},
	fields,
)

call(who, server, tool, args) := {
	"agent": who,
	"request": request("tools/call", server, {"tool": tool, "arguments": args}),
	"tool": null,
}

listed(who, server, tool) := {
	"agent": who,
	"request": request("tools/list", server, {"tool": tool}),
	"tool": null,
}

# ------------------------------------------------------------------ allow

test_analyst_may_call_echo_on_demo if {
	d := authz.decision with input as call(analyst, "demo", "echo", {"text": "hi"})
	d.allow == true
	d.reasons == ["role analyst grants tool echo on server demo"]
	not d.message
}

test_analyst_may_call_get_sum_on_everything if {
	d := authz.decision with input as call(analyst, "everything", "get-sum", {"a": 1, "b": 2})
	d.allow == true
}

test_admin_may_call_any_tool_on_any_server if {
	every server_tool in [["demo", "delete_record"], ["everything", "get-env"], ["files", "anything"]] {
		d := authz.decision with input as call(admin, server_tool[0], server_tool[1], {"id": "r1"})
		d.allow == true
	}
}

test_any_granting_role_suffices if {
	d := authz.decision with input as call(agent(["guest", "analyst"], all_scopes), "demo", "add", {"a": 1, "b": 2})
	d.allow == true
	d.reasons == ["role analyst grants tool add on server demo"]
}

# ------------------------------------------------------------------ deny by tool

test_analyst_may_not_call_delete_record if {
	d := authz.decision with input as call(analyst, "demo", "delete_record", {"id": "r1"})
	d.allow == false
	d.reasons == ["no role grants tool delete_record on server demo"]
	not d.message # an ungranted tool is reported as unknown, so nothing is said about it
	not d.rate_limit
}

test_analyst_grants_do_not_cross_servers if {
	d := authz.decision with input as call(analyst, "everything", "read_file", {"path": "/data/x"})
	d.allow == false
	d.reasons == ["no role grants tool read_file on server everything"]
	not d.message
}

test_role_with_no_grants_is_denied if {
	d := authz.decision with input as call(agent(["guest"], all_scopes), "demo", "echo", {"text": "hi"})
	d.allow == false
	d.reasons == ["no role grants tool echo on server demo"]
}

test_undefined_role_is_denied if {
	d := authz.decision with input as call(agent(["intern"], all_scopes), "demo", "echo", {"text": "hi"})
	d.allow == false
	d.reasons == ["no role grants tool echo on server demo"]
}

test_agent_without_roles_is_denied if {
	d := authz.decision with input as call(agent([], all_scopes), "demo", "echo", {"text": "hi"})
	d.allow == false
}

test_call_without_tool_name_is_denied if {
	d := authz.decision with input as call(admin, "demo", null, {})
	d.allow == false
	d.reasons == ["request names no tool"]
}

test_unsupported_method_is_denied if {
	inp := {"agent": admin, "request": request("sampling/createMessage", "demo", {}), "tool": null}
	d := authz.decision with input as inp
	d.allow == false
	d.reasons == ["unsupported method"]
}

test_missing_input_is_denied if {
	d := authz.decision with input as {}
	d.allow == false
	d.reasons == ["unsupported method"]
}

# ------------------------------------------------------------------ deny by scope

test_missing_tools_scope_is_denied if {
	d := authz.decision with input as call(agent(["analyst"], ["mcp:resources"]), "demo", "echo", {"text": "hi"})
	d.allow == false
	d.reasons == ["missing scope mcp:tools"]
}

test_missing_scope_and_grant_are_both_explained if {
	d := authz.decision with input as call(agent(["analyst"], []), "demo", "delete_record", {"id": "r1"})
	d.reasons == ["missing scope mcp:tools", "no role grants tool delete_record on server demo"]
}

test_missing_resources_scope_is_denied if {
	inp := {
		"agent": agent(["analyst"], ["mcp:tools"]),
		"request": request("resources/read", "demo", {"resource": "demo://readme"}),
		"tool": null,
	}
	d := authz.decision with input as inp
	d.allow == false
	d.reasons == ["missing scope mcp:resources"]
}

# ------------------------------------------------------------------ argument constraints

path_cases := [
	{"note": "outside /data", "path": "/etc/passwd"},
	{"note": "escapes /data with ..", "path": "/data/../etc/passwd"},
	{"note": "trailing ..", "path": "/data/reports/.."},
	{"note": "prefix without slash", "path": "/database/x"},
	{"note": "relative", "path": "data/x"},
	{"note": "not a string", "path": 42},
]

test_read_file_outside_data_is_denied_with_a_message if {
	every case in path_cases {
		d := authz.decision with input as call(analyst, "demo", "read_file", {"path": case.path})
		d.allow == false
		d.message == "read_file is limited to /data"
		d.reasons == ["path of read_file must be under /data/ with no '..' segment"]
	}
}

test_read_file_without_path_is_denied if {
	d := authz.decision with input as call(analyst, "demo", "read_file", {})
	d.allow == false
	d.message == "read_file is limited to /data"
}

test_read_file_with_null_arguments_is_denied if {
	d := authz.decision with input as call(analyst, "demo", "read_file", null)
	d.allow == false
}

test_read_file_under_data_is_allowed if {
	every path in ["/data/q3.csv", "/data/reports/2026/q3.csv", "/data/..hidden"] {
		d := authz.decision with input as call(analyst, "demo", "read_file", {"path": path})
		d.allow == true
	}
}

test_constraint_message_is_hidden_from_agents_without_the_tool if {
	d := authz.decision with input as call(agent(["guest"], all_scopes), "demo", "read_file", {"path": "/etc/passwd"})
	d.allow == false
	not d.message
	"no role grants tool read_file on server demo" in d.reasons
}

test_constraints_bind_admins_too if {
	d := authz.decision with input as call(admin, "demo", "read_file", {"path": "/etc/passwd"})
	d.allow == false
	d.message == "read_file is limited to /data"
}

# ------------------------------------------------------------------ list visibility

test_listed_tool_is_visible_when_granted if {
	every tool in ["echo", "add", "read_file"] {
		d := authz.decision with input as listed(analyst, "demo", tool)
		d.allow == true
		not d.rate_limit
	}
}

test_listed_tool_is_hidden_when_not_granted if {
	d := authz.decision with input as listed(analyst, "demo", "delete_record")
	d.allow == false
	not d.message
}

test_listing_needs_the_scope if {
	d := authz.decision with input as listed(agent(["analyst"], ["mcp:prompts"]), "demo", "echo")
	d == {"allow": false, "reasons": ["missing scope mcp:tools"]}
}

# A listed item's decision is its visibility alone: no grant reasons, limits or masks for the
# gateway to skip; a hidden item still says why.
test_a_listed_item_is_decided_for_visibility_only if {
	authz.decision == {"allow": true} with input as listed(analyst, "demo", "echo")
	authz.decision == {"allow": false, "reasons": ["no role grants tool delete_record on server demo"]} with input as listed(analyst, "demo", "delete_record")
	d := authz.decision with input as call(analyst, "demo", "echo", {"text": "hi"})
	d.reasons == ["role analyst grants tool echo on server demo"]
}

test_resources_and_prompts_follow_grants if {
	cases := [
		{"note": "granted resource", "who": analyst, "method": "resources/read", "server": "demo", "fields": {"resource": "demo://readme"}, "allow": true},
		{"note": "other resource", "who": analyst, "method": "resources/read", "server": "demo", "fields": {"resource": "demo://secrets"}, "allow": false},
		{"note": "listed resource", "who": analyst, "method": "resources/list", "server": "demo", "fields": {"resource": "demo://readme"}, "allow": true},
		{"note": "wildcard resource", "who": analyst, "method": "resources/read", "server": "everything", "fields": {"resource": "demo://resource/static/document/a.md"}, "allow": true},
		{"note": "granted prompt", "who": analyst, "method": "prompts/get", "server": "demo", "fields": {"prompt": "summarize"}, "allow": true},
		{"note": "other prompt", "who": analyst, "method": "prompts/get", "server": "demo", "fields": {"prompt": "exfiltrate"}, "allow": false},
		{"note": "listed prompt", "who": analyst, "method": "prompts/list", "server": "everything", "fields": {"prompt": "simple-prompt"}, "allow": true},
		{"note": "guest prompt", "who": agent(["guest"], all_scopes), "method": "prompts/get", "server": "demo", "fields": {"prompt": "summarize"}, "allow": false},
	]
	every case in cases {
		d := authz.decision with input as {"agent": case.who, "request": request(case.method, case.server, case.fields), "tool": null}
		d.allow == case.allow
	}
}

test_prompt_denial_names_the_prompt if {
	inp := {"agent": analyst, "request": request("prompts/get", "demo", {"prompt": "exfiltrate"}), "tool": null}
	d := authz.decision with input as inp
	d.reasons == ["no role grants prompt exfiltrate on server demo"]
}

# ------------------------------------------------------------------ rate limits

test_allowed_call_carries_its_rate_limit_class if {
	cases := [
		{"note": "default class", "who": analyst, "server": "demo", "tool": "echo", "args": {"text": "x"}, "limit": 120},
		{"note": "io class", "who": analyst, "server": "demo", "tool": "read_file", "args": {"path": "/data/x"}, "limit": 60},
		{"note": "destructive class", "who": admin, "server": "demo", "tool": "delete_record", "args": {"id": "r1"}, "limit": 5},
		{"note": "other server", "who": analyst, "server": "everything", "tool": "echo", "args": {"message": "x"}, "limit": 120},
	]
	every case in cases {
		d := authz.decision with input as call(case.who, case.server, case.tool, case.args)
		d.rate_limit == {"key": concat(":", ["alice", case.server, case.tool]), "limit": case.limit, "window_seconds": 60}
	}
}

test_denied_call_has_no_rate_limit if {
	d := authz.decision with input as call(analyst, "demo", "read_file", {"path": "/etc/passwd"})
	not d.rate_limit
}

# ------------------------------------------------------------------ approvals

approvals_data := {"tools": {
	"demo": {"delete_record": {"reason": "deletes customer data", "ttl_seconds": 600}},
	"*": {"echo": {"reason": "echo anywhere", "ttl_seconds": 60}},
}}

test_an_allowed_call_of_a_listed_tool_requires_approval if {
	d := authz.decision with input as call(admin, "demo", "delete_record", {"id": "r1"})
		with data.portcullis.approvals as approvals_data
	d.allow
	d.require_approval == {"reason": "deletes customer data", "ttl_seconds": 600}
	e := authz.decision with input as call(analyst, "everything", "echo", {"message": "x"})
		with data.portcullis.approvals as approvals_data
	e.require_approval == {"reason": "echo anywhere", "ttl_seconds": 60}
}

test_no_approval_for_unlisted_or_denied_calls if {
	unlisted := authz.decision with input as call(analyst, "demo", "add", {"a": 1, "b": 2})
		with data.portcullis.approvals as approvals_data
	not unlisted.require_approval
	denied := authz.decision with input as call(analyst, "demo", "delete_record", {"id": "r1"})
		with data.portcullis.approvals as approvals_data
	not denied.allow
	not denied.require_approval
}

# ------------------------------------------------------------------ masking

test_secret_looking_arguments_are_masked if {
	args := {
		"path": "/data/x",
		"Password": "hunter2",
		"auth": {"api_key": "k", "user": "u"},
		"tokens": [{"token": "t0"}, {"note": "n"}],
	}
	d := authz.decision with input as call(analyst, "demo", "read_file", args)
	d.allow == true
	d.mask == [
		"/input/request/arguments/Password",
		"/input/request/arguments/auth/api_key",
		"/input/request/arguments/tokens/0/token",
	]
}

test_masks_apply_to_denied_calls if {
	d := authz.decision with input as call(analyst, "demo", "delete_record", {"id": "r1", "secret": "s"})
	d.allow == false
	d.mask == ["/input/request/arguments/secret"]
}

test_no_mask_without_secret_arguments if {
	d := authz.decision with input as call(analyst, "demo", "echo", {"text": "hi"})
	not d.mask
}

test_mask_pointers_escape_json_pointer_characters if {
	authz.pointer_segment("a/b~c") == "a~1b~0c"
	authz.pointer_segment(3) == "3"
	d := authz.decision with input as call(analyst, "demo", "echo", {"x/y": {"token": "t"}})
	d.mask == ["/input/request/arguments/x~1y/token"]
}

# ------------------------------------------------------------------ starter library through the decision

ops := agent(["ops"], all_scopes)

at(inp, time, ip) := object.union(inp, {"request": object.union(inp.request, {"time": time, "source_ip": ip})})

with_tool(inp, annotations) := object.union(inp, {"tool": {"name": inp.request.tool, "annotations": annotations}})

test_ops_grants_only_inside_window_and_network if {
	cases := [
		{"note": "weekday, office network", "time": "2026-11-24T10:00:00.000Z", "ip": "10.0.0.5", "allow": true},
		{"note": "weekend", "time": "2026-11-28T10:00:00.000Z", "ip": "10.0.0.5", "allow": false},
		{"note": "outside network", "time": "2026-11-24T10:00:00.000Z", "ip": "203.0.113.9", "allow": false},
	]
	every case in cases {
		d := authz.decision with input as at(call(ops, "demo", "echo", {"text": "x"}), case.time, case.ip)
		d.allow == case.allow
	}
}

test_held_back_role_explains_itself if {
	d := authz.decision with input as at(call(ops, "demo", "echo", {"text": "x"}), "2026-11-28T10:00:00.000Z", "203.0.113.9")
	d.reasons == ["role ops is not allowed from 203.0.113.9", "role ops is outside its time window"]
	not d.rate_limit
}

test_another_active_role_still_grants if {
	d := authz.decision with input as at(call(agent(["ops", "analyst"], all_scopes), "demo", "echo", {"text": "x"}), "2026-11-28T10:00:00.000Z", "10.0.0.5")
	d.allow == true
	d.reasons == ["role analyst grants tool echo on server demo"]
}

test_agent_network_restriction_denies_every_role if {
	d := authz.decision with input as at(call(admin, "demo", "echo", {"text": "x"}), "2026-11-24T10:00:00.000Z", "203.0.113.9")
		with data.portcullis.source_networks.agents as {"alice": ["10.0.0.0/8"]}
	d.allow == false
	d.reasons == ["agent alice is not allowed from 203.0.113.9"]
}

test_destructive_tool_needs_a_destructive_role if {
	wide := {"demo": {"tools": ["*"]}}
	d1 := authz.decision with input as with_tool(call(agent(["wide"], all_scopes), "demo", "delete_record", {"id": "1"}), {"destructiveHint": true})
		with data.portcullis.roles.wide as wide
	d1.allow == false
	d1.reasons == ["role wide may not use destructive tools"]
	d2 := authz.decision with input as with_tool(call(admin, "demo", "delete_record", {"id": "1"}), {"destructiveHint": true})
	d2.allow == true
	d2.rate_limit.limit == 5
}

test_destructive_tools_fall_into_the_destructive_class if {
	d := authz.decision with input as with_tool(call(admin, "files", "purge", {}), {"destructiveHint": true})
	d.rate_limit == {"key": "alice:files:purge", "limit": 5, "window_seconds": 60}
}

test_any_server_rate_class if {
	d := authz.decision with input as call(ops, "demo", "query", {"sql": "select 1"})
	d.allow == true
	d.rate_limit.limit == 60
}

test_argument_constraints_show_their_message if {
	d := authz.decision with input as call(ops, "demo", "query", {"sql": "drop table t", "limit": 5000})
	d.allow == false
	d.message == "limit must be an integer from 1 to 1000; query accepts one read-only SELECT"
	d.reasons == ["argument limit fails number constraint", "argument sql fails readonly_sql constraint (not a SELECT, WITH, EXPLAIN SELECT, SHOW or VALUES statement)"]
}

test_url_constraint_through_the_decision if {
	ok := authz.decision with input as call(ops, "demo", "fetch_url", {"url": "https://api.example.com/v1"})
	ok.allow == true
	bad := authz.decision with input as call(ops, "demo", "fetch_url", {"url": "https://api.example.com@evil.net/"})
	bad.allow == false
	bad.message == "fetch_url may only fetch https://api.example.com and *.docs.example.com"
}

test_secret_value_patterns_are_opt_in if {
	d := authz.decision with input as call(analyst, "demo", "echo", {"id": "card 4111-1111-1111-1111", "text": "hi"})
		with data.portcullis.secret_value_patterns as [`\b[0-9]{4}(-[0-9]{4}){3}\b`]
	d.mask == ["/input/request/arguments/id"]
	plain := authz.decision with input as call(analyst, "demo", "echo", {"id": "card 4111-1111-1111-1111"})
	not plain.mask
}

test_secret_looking_values_are_masked if {
	args := {
		"headers": ["Bearer abc.def", "Accept: */*"],
		"note": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
		"aws": "AKIAABCDEFGHIJKLMNOP",
		"text": "hello",
	}
	d := authz.decision with input as call(analyst, "demo", "echo", args)
	d.mask == [
		"/input/request/arguments/aws",
		"/input/request/arguments/headers/0",
		"/input/request/arguments/note",
	]
}

test_read_file_path_tricks_are_denied if {
	every path in ["/data//etc/passwd", "/data/./x", "/data/%2e%2e/etc/passwd", "/data/x\\..\\..\\etc"] {
		d := authz.decision with input as call(analyst, "demo", "read_file", {"path": path})
		d.allow == false
		d.message == "read_file is limited to /data"
	}
}
