package mcp.authz_scopes_test

import data.mcp.authz

# The scope challenge (decision.required_scopes): named only when a role grants the item and the
# token lacks the method's scope, so that re-consent could turn the deny into an allow.

scoped_call(roles, scopes, tool) := {
	"agent": {"sub": "alice", "iss": "https://idp.example.com/", "client_id": "cli", "scopes": scopes, "roles": roles, "claims": {}},
	"request": {
		"method": "tools/call", "server": "demo", "tool": tool, "arguments": {"text": "hi"},
		"resource": null, "prompt": null, "session_id": "s1", "protocol_version": "2025-11-25",
		"source_ip": "127.0.0.1", "time": "2026-11-24T10:00:00.000Z",
	},
	"tool": null,
}

test_granted_tool_without_scope_names_the_scope if {
	d := authz.decision with input as scoped_call(["analyst"], ["mcp:resources"], "echo")
	d.allow == false
	d.required_scopes == ["mcp:tools"]
}

test_ungranted_tool_without_scope_names_nothing if {
	d := authz.decision with input as scoped_call(["analyst"], ["mcp:resources"], "delete_record")
	d.allow == false
	not d.required_scopes
}

test_scope_held_names_nothing if {
	d := authz.decision with input as scoped_call(["analyst"], ["mcp:tools"], "echo")
	d.allow == true
	not d.required_scopes
}
