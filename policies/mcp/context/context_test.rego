package mcp.context_test

import data.mcp.context

# 2026-11-24 is a Tuesday; 2026-11-28 a Saturday.
inp(roles, time, ip, annotations) := {
	"agent": {"sub": "alice", "roles": roles},
	"request": {"method": "tools/call", "server": "demo", "tool": "t", "time": time, "source_ip": ip},
	"tool": {"name": "t", "annotations": annotations},
}

restricted(i) := {r | some [_, r] in rs} if {
	rs := context.role_restrictions with input as i
}

test_time_window if {
	cases := [
		{"note": "weekday inside", "time": "2026-11-24T10:00:00Z", "ok": true},
		{"note": "opening hour", "time": "2026-11-24T07:00:00.000Z", "ok": true},
		{"note": "last minute", "time": "2026-11-24T18:59:59.999Z", "ok": true},
		{"note": "closing hour", "time": "2026-11-24T19:00:00Z", "ok": false},
		{"note": "before opening", "time": "2026-11-24T06:59:59Z", "ok": false},
		{"note": "weekend", "time": "2026-11-28T10:00:00Z", "ok": false},
		{"note": "offset moves it to UTC 06:30", "time": "2026-11-24T08:30:00+02:00", "ok": false},
		{"note": "unparsable time", "time": "yesterday", "ok": false},
	]
	every case in cases {
		r := restricted(inp(["ops"], case.time, "10.1.2.3", {}))
		ok := count(r) == 0
		ok == case.ok
	}
}

test_time_window_reason if {
	restricted(inp(["ops"], "2026-11-28T10:00:00Z", "10.1.2.3", {})) == {"role ops is outside its time window"}
}

test_window_without_days_means_every_day if {
	r := restricted(inp(["night"], "2026-11-28T23:30:00Z", "10.1.2.3", {})) with data.portcullis.time_windows as {"night": {"hours": [22, 24]}}
	r == set()
}

test_source_network_per_role if {
	cases := [
		{"note": "inside 10/8", "ip": "10.200.0.1", "ok": true},
		{"note": "loopback", "ip": "127.0.0.1", "ok": true},
		{"note": "IPv4-mapped IPv6", "ip": "::ffff:10.0.0.7", "ok": true},
		{"note": "IPv6 loopback", "ip": "::1", "ok": true},
		{"note": "outside", "ip": "192.168.1.10", "ok": false},
		{"note": "unknown source", "ip": null, "ok": false},
		{"note": "garbage", "ip": "not-an-ip", "ok": false},
	]
	every case in cases {
		r := restricted(inp(["ops"], "2026-11-24T10:00:00Z", case.ip, {}))
		ok := count(r) == 0
		ok == case.ok
	}
}

test_source_network_reason if {
	restricted(inp(["ops"], "2026-11-24T10:00:00Z", "192.168.1.10", {})) == {"role ops is not allowed from 192.168.1.10"}
}

test_source_network_per_agent if {
	nets := {"roles": {}, "agents": {"alice": ["10.0.0.0/8"]}}
	r1 := context.agent_restrictions with input as inp([], "2026-11-24T10:00:00Z", "192.168.1.10", {})
		with data.portcullis.source_networks as nets
	r1 == {"agent alice is not allowed from 192.168.1.10"}
	r2 := context.agent_restrictions with input as inp([], "2026-11-24T10:00:00Z", "10.9.9.9", {})
		with data.portcullis.source_networks as nets
	r2 == set()
}

test_destructive_tools_only_for_named_roles if {
	cases := [
		{"note": "analyst, destructive", "roles": ["analyst"], "annotations": {"destructiveHint": true}, "ok": false},
		{"note": "admin, destructive", "roles": ["admin"], "annotations": {"destructiveHint": true}, "ok": true},
		{"note": "analyst, read-only", "roles": ["analyst"], "annotations": {"readOnlyHint": true}, "ok": true},
		{"note": "analyst, unannotated (default: not destructive)", "roles": ["analyst"], "annotations": {}, "ok": true},
		{"note": "analyst, destructiveHint false", "roles": ["analyst"], "annotations": {"destructiveHint": false}, "ok": true},
	]
	every case in cases {
		r := restricted(inp(case.roles, "2026-11-24T10:00:00Z", "10.0.0.1", case.annotations))
		ok := count(r) == 0
		ok == case.ok
	}
}

test_unannotated_tools_can_count_as_destructive if {
	strict := {"destructive_roles": ["admin"], "treat_unannotated_as_destructive": true}
	r1 := restricted(inp(["analyst"], "2026-11-24T10:00:00Z", "10.0.0.1", {})) with data.portcullis.annotations as strict
	r1 == {"role analyst may not use destructive tools"}
	r2 := restricted(inp(["analyst"], "2026-11-24T10:00:00Z", "10.0.0.1", {"readOnlyHint": true})) with data.portcullis.annotations as strict
	r2 == set()
}
