# METADATA
# title: Request context restrictions
# description: |
#   Restrictions that depend on when, where from and on what kind of tool, configured in
#   data.portcullis (each is opt-in: no data, no cost):
#   - time_windows[<role>] = {days, hours: [from, to)}: the role grants only then (UTC, from
#     input.request.time, so a decision replays the same way);
#   - source_networks.roles[<role>] / .agents[<sub>] = [CIDR]: the role grants, or the agent may
#     call at all, only from those networks (input.request.source_ip);
#   - annotations.destructive_roles = [role]: a tool the upstream marks destructiveHint (or, with
#     treat_unannotated_as_destructive, one not marked readOnlyHint) only for those roles.
#   mcp.authz counts a granting role only when role_restrictions names nothing for it.
package mcp.context

cfg := data.portcullis

# ------------------------------------------------------------------ per role

# METADATA
# description: "[role, reason] pairs: why a role that grants the item may not use it now."
role_restrictions contains [role, concat("", ["role ", role, " is outside its time window"])] if {
	some role in input.agent.roles
	window := cfg.time_windows[role]
	not in_window(window)
}

role_restrictions contains [role, concat("", ["role ", role, " is not allowed from ", source_ip])] if {
	some role in input.agent.roles
	networks := cfg.source_networks.roles[role]
	not from_any(networks)
}

role_restrictions contains [role, concat("", ["role ", role, " may not use destructive tools"])] if {
	destructive_tool
	some role in input.agent.roles
	not role in cfg.annotations.destructive_roles
}

# ------------------------------------------------------------------ per agent

# METADATA
# description: Reasons that deny whatever the roles grant.
agent_restrictions contains concat("", ["agent ", input.agent.sub, " is not allowed from ", source_ip]) if {
	networks := cfg.source_networks.agents[input.agent.sub]
	not from_any(networks)
}

# ------------------------------------------------------------------ time windows

request_ns := time.parse_rfc3339_ns(input.request.time)

# hours [from, to) in UTC; to may be 24. A window with no days key means every day.
in_window(window) if {
	time.weekday(request_ns) in object.get(window, "days", [time.weekday(request_ns)])
	hour := time.clock(request_ns)[0]
	hour >= window.hours[0]
	hour < window.hours[1]
}

# ------------------------------------------------------------------ source networks

default source_ip := "unknown"

source_ip := input.request.source_ip if is_string(input.request.source_ip)

# IPv4 clients on a dual-stack socket appear as ::ffff:a.b.c.d; compare the IPv4 address.
plain_ip := trim_prefix(source_ip, "::ffff:") if regex.match(`^::ffff:[0-9.]+$`, source_ip)

else := source_ip

from_any(networks) if {
	some cidr in networks
	net.cidr_contains(cidr, plain_ip)
}

# ------------------------------------------------------------------ annotations

destructive_tool if input.tool.annotations.destructiveHint == true

destructive_tool if {
	cfg.annotations.treat_unannotated_as_destructive == true
	not input.tool.annotations.readOnlyHint == true
	not input.tool.annotations.destructiveHint == false
}
