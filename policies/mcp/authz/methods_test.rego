package mcp.authz_methods_test

import data.mcp.authz

# Every request method gets a decision (contract 3): protocol methods for any authenticated
# agent, item-bearing methods through the grants of their family, everything else denied.

all_scopes := ["mcp:tools", "mcp:resources", "mcp:prompts"]

agent(roles, scopes) := {
	"sub": "alice",
	"iss": "https://idp.example.com/",
	"client_id": "cli",
	"scopes": scopes,
	"roles": roles,
	"claims": {},
}

decide(who, method, server, fields) := d if {
	d := authz.decision with input as request(who, method, server, fields)
}

request(who, method, server, fields) := {
	"agent": who,
	"request": object.union(
		{
			"method": method, "server": server, "tool": null, "arguments": null,
			"resource": null, "prompt": null, "session_id": "s1",
			"protocol_version": "2025-11-25", "source_ip": "127.0.0.1",
			"time": "2026-11-24T10:00:00.000Z",
		},
		fields,
	),
	"tool": null,
}

protocol_methods := [
	"initialize", "server/discover", "ping", "logging/setLevel", "tasks/list",
	"notifications/initialized", "notifications/cancelled", "notifications/progress",
	"notifications/roots/list_changed",
]

# ------------------------------------------------------------------ protocol methods

test_the_shipped_protocol_methods_are_exactly_these if {
	sort(data.portcullis.protocol_methods) == sort(protocol_methods)
}

test_protocol_methods_are_allowed_for_an_agent_with_no_roles_or_scopes if {
	every method in protocol_methods {
		d := decide(agent([], []), method, "demo", {})
		d.allow == true
		d.reasons == [concat("", [method, " is a protocol method"])]
		not d.rate_limit
		not d.required_scopes
	}
}

test_protocol_methods_need_an_authenticated_agent if {
	every who in [{}, {"sub": ""}, {"sub": 7}] {
		d := decide(who, "ping", "demo", {})
		d.allow == false
		d.reasons == ["request names no agent"]
	}
}

test_agent_network_restrictions_apply_to_protocol_methods if {
	d := decide(agent([], []), "ping", "demo", {"source_ip": "203.0.113.9"}) with data.portcullis.source_networks.agents as {"alice": ["10.0.0.0/8"]}
	d.allow == false
	d.reasons == ["agent alice is not allowed from 203.0.113.9"]
}

test_a_method_with_a_row_is_decided_by_its_row_even_if_listed_as_protocol if {
	d := decide(agent([], all_scopes), "tools/call", "demo", {"tool": "echo"}) with data.portcullis.protocol_methods as ["tools/call"]
	d.allow == false
	d.reasons == ["no role grants tool echo on server demo"]
}

# ------------------------------------------------------------------ unknown methods

test_unknown_methods_and_case_variants_are_denied if {
	cases := [
		{"note": "custom method", "method": "admin/exec", "fields": {}},
		{"note": "case variant of tools/call", "method": "Tools/Call", "fields": {"tool": "echo", "arguments": {"text": "hi"}}},
		{"note": "case variant of ping", "method": "PING", "fields": {}},
		{"note": "server-to-client method", "method": "sampling/createMessage", "fields": {}},
		{"note": "unlisted notification", "method": "notifications/message", "fields": {}},
		{"note": "trailing space", "method": "ping ", "fields": {}},
		{"note": "empty", "method": "", "fields": {}},
		{"note": "not a string", "method": 7, "fields": {}},
	]
	every case in cases {
		d := decide(agent(["admin"], all_scopes), case.method, "demo", case.fields)
		d.allow == false
		d.reasons == ["unsupported method"]
		not d.message
		not d.required_scopes
	}
}

# ------------------------------------------------------------------ item-bearing methods

test_subscriptions_and_tasks_follow_their_family_grants if {
	cases := [
		{"note": "subscribe granted", "method": "resources/subscribe", "fields": {"resource": "demo://readme"}},
		{"note": "unsubscribe granted", "method": "resources/unsubscribe", "fields": {"resource": "demo://readme"}},
		{"note": "tasks/get", "method": "tasks/get", "fields": {"tool": "echo", "arguments": {"text": "hi"}}},
		{"note": "tasks/result", "method": "tasks/result", "fields": {"tool": "echo", "arguments": {"text": "hi"}}},
		{"note": "tasks/cancel", "method": "tasks/cancel", "fields": {"tool": "echo", "arguments": {"text": "hi"}}},
	]
	every case in cases {
		granted := decide(agent(["analyst"], all_scopes), case.method, "demo", case.fields)
		granted.allow == true
		not granted.rate_limit # only tools/call is counted
		ungranted := decide(agent(["guest"], all_scopes), case.method, "demo", case.fields)
		ungranted.allow == false
		not ungranted.message
	}
}

test_subscription_reasons_name_the_resource if {
	d := decide(agent(["analyst"], all_scopes), "resources/subscribe", "demo", {"resource": "demo://secrets"})
	d.reasons == ["no role grants resource demo://secrets on server demo"]
}

test_tasks_need_the_tools_scope_and_a_tool if {
	scope := decide(agent(["analyst"], ["mcp:resources"]), "tasks/result", "demo", {"tool": "echo"})
	scope.allow == false
	scope.reasons == ["missing scope mcp:tools"]
	no_tool := decide(agent(["admin"], all_scopes), "tasks/get", "demo", {})
	no_tool.allow == false
	no_tool.reasons == ["request names no tool"]
}

test_subscriptions_need_the_resources_scope if {
	d := decide(agent(["analyst"], ["mcp:tools"]), "resources/subscribe", "demo", {"resource": "demo://readme"})
	d.allow == false
	d.reasons == ["missing scope mcp:resources"]
}

test_task_argument_constraints_are_checked_on_the_call_only if {
	# The creating tools/call was checked; its task carries the same arguments and is not re-judged.
	d := decide(agent(["analyst"], all_scopes), "tasks/result", "demo", {"tool": "read_file", "arguments": {"path": "/etc/passwd", "token": "t"}})
	d.allow == true
	d.mask == ["/input/request/arguments/token"]
}

# ------------------------------------------------------------------ completion/complete

test_completion_decides_as_the_prompt_or_resource_it_completes if {
	cases := [
		{"note": "granted prompt", "roles": ["analyst"], "scopes": all_scopes, "fields": {"prompt": "summarize"}, "allow": true, "reasons": ["role analyst grants prompt summarize on server demo"]},
		{"note": "other prompt", "roles": ["analyst"], "scopes": all_scopes, "fields": {"prompt": "exfiltrate"}, "allow": false, "reasons": ["no role grants prompt exfiltrate on server demo"]},
		{"note": "granted resource template", "roles": ["analyst"], "scopes": all_scopes, "fields": {"resource": "demo://readme"}, "allow": true, "reasons": ["role analyst grants resource demo://readme on server demo"]},
		{"note": "other resource template", "roles": ["analyst"], "scopes": all_scopes, "fields": {"resource": "demo://files/{path}"}, "allow": false, "reasons": ["no role grants resource demo://files/{path} on server demo"]},
		{"note": "prompt without the prompts scope", "roles": ["analyst"], "scopes": ["mcp:resources"], "fields": {"prompt": "summarize"}, "allow": false, "reasons": ["missing scope mcp:prompts"]},
		{"note": "resource without the resources scope", "roles": ["analyst"], "scopes": ["mcp:prompts"], "fields": {"resource": "demo://readme"}, "allow": false, "reasons": ["missing scope mcp:resources"]},
		{"note": "guest", "roles": ["guest"], "scopes": all_scopes, "fields": {"prompt": "summarize"}, "allow": false, "reasons": ["no role grants prompt summarize on server demo"]},
		{"note": "no roles", "roles": [], "scopes": all_scopes, "fields": {"prompt": "summarize"}, "allow": false, "reasons": ["no role grants prompt summarize on server demo"]},
	]
	every case in cases {
		d := decide(agent(case.roles, case.scopes), "completion/complete", "demo", case.fields)
		d.allow == case.allow
		d.reasons == case.reasons
	}
}

test_completion_must_name_exactly_one_item if {
	every fields in [{}, {"prompt": "summarize", "resource": "demo://readme"}] {
		d := decide(agent(["admin"], all_scopes), "completion/complete", "demo", fields)
		d.allow == false
		d.reasons == ["request must name exactly one of prompt, resource"]
	}
}

test_completion_scope_challenge_names_the_family_scope if {
	d := decide(agent(["analyst"], ["mcp:tools"]), "completion/complete", "demo", {"prompt": "summarize"})
	d.required_scopes == ["mcp:prompts"]
}
