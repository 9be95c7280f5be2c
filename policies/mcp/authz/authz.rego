# METADATA
# title: MCP authorization
# description: |
#   The gateway evaluates data.mcp.authz.decision for every request and every client notification
#   it would forward, and once per item of tools/list, resources/list and prompts/list (contract 3).
#   Deny by default. A protocol method (data.portcullis.protocol_methods: initialize, ping, …)
#   is allowed for every authenticated agent. Any other method is allowed only when it has a row
#   in data.portcullis.methods, the token carries the row's scope, one of the agent's roles grants
#   the item on the server, and (for calls) no argument constraint is violated. Grants, scopes,
#   rate limits and secret argument names live in data.portcullis (policies/data.json).
package mcp.authz

import data.mcp.constraints
import data.mcp.context
import data.mcp.result as result_policy

cfg := data.portcullis

# METADATA
# title: decision
# description: |
#   The one entrypoint (mcp/authz/decision); its shape is contract 3. A listed item is decided
#   for its visibility alone: the gateway reads only `allow` of it (a list request has no other
#   decision and one audit event), so grant reasons, limits and masks are not computed for every
#   item of a 1,000-tool listing. A hidden item still says why (`portcullis policy eval`); its
#   deny reasons are the ones `allow` has already evaluated.
decision := {"allow": true} if {
	listed_item
	allow
}

decision := {"allow": false, "reasons": sort(deny_reasons)} if {
	listed_item
	not allow
}

decision := object.union_n([
	{"allow": allow, "reasons": reasons},
	message_field,
	rate_limit_field,
	mask_field,
	required_scopes_field,
	require_approval_field,
]) if not listed_item

# The methods the gateway decides once per listed item (contract 3).
listed_item if input.request.method in {"tools/list", "resources/list", "prompts/list"}

# METADATA
# title: result
# description: |
#   The optional second entrypoint (mcp/authz/result): evaluated on each tool result before the
#   agent sees it, with input.result added; redacts or withholds it (mcp.result,
#   docs/result-policy.md). `entrypoint: true` makes opa build export it whenever it is defined,
#   so a policy without it still builds with -e mcp/authz/decision alone.
# entrypoint: true
result := result_policy.decision

# The request's row in data.portcullis.methods: its family (tools, resources, prompts), the
# request field that names the item (tool, resource, prompt), and the scope it needs. Methods are
# matched exactly as sent: "Tools/Call" has no row and is denied.
method_row := cfg.methods[input.request.method]

method := method_row if not method_row.one_of

# A row with "one_of" lists one {family, item, scope} per item field the method may name
# (completion/complete completes a prompt's or a resource template's argument); the request must
# fill exactly one of them, which then decides like prompts/get or resources/read.
method := variants[0] if {
	variants := [variant |
		some variant in method_row.one_of
		not is_null(object.get(input.request, variant.item, null))
	]
	count(variants) == 1
}

# Methods every authenticated agent may use whatever its roles: they name no tool, resource or
# prompt (data.portcullis.protocol_methods; docs/policy-authoring.md says why each is safe). A
# method that also has a row in methods is decided by its row, the stricter reading.
protocol_method if {
	input.request.method in cfg.protocol_methods
	not method_row
}

authenticated if {
	is_string(input.agent.sub)
	input.agent.sub != ""
}

# The tool name, resource URI or prompt name the request is about. List methods carry one listed
# item per evaluation, so the same grants decide what an agent sees and what it may use.
item_name := input.request[method.item]

default arguments := {}

arguments := input.request.arguments if is_object(input.request.arguments)

# ------------------------------------------------------------------ allow

default allow := false

allow if {
	count(active_roles) > 0
	count(deny_reasons) == 0
}

allow if {
	protocol_method
	authenticated
	count(deny_reasons) == 0
}

# Roles of the agent that grant the item on this server (a server or item of "*" matches any).
granting_roles contains role if {
	is_string(item_name)
	item_name != ""
	some role in input.agent.roles
	some server in [input.request.server, "*"]
	some pattern in cfg.roles[role][server][method.family]
	pattern in {"*", item_name}
}

# Granting roles that no time window, source network or annotation rule holds back (mcp.context).
active_roles := granting_roles - {role | some [role, _] in context.role_restrictions}

# ------------------------------------------------------------------ reasons (audited, never shown)

reasons := sort(grant_reasons) if allow

reasons := sort(deny_reasons) if not allow

grant_reasons contains concat("", ["role ", role, " grants ", method.item, " ", item_name, " on server ", input.request.server]) if {
	some role in active_roles
}

grant_reasons contains concat("", [input.request.method, " is a protocol method"]) if protocol_method

# The audit event records which method it was.
deny_reasons contains "unsupported method" if {
	not method_row # a helper rule: a nested ref would be evaluated outside the negation
	not protocol_method
}

deny_reasons contains concat("", ["request must name exactly one of ", concat(", ", items)]) if {
	variants := method_row.one_of
	not method
	items := [variant.item | some variant in variants]
}

deny_reasons contains "request names no agent" if {
	protocol_method
	not authenticated
}

deny_reasons contains concat("", ["missing scope ", method.scope]) if {
	not method.scope in input.agent.scopes
}

deny_reasons contains concat("", ["request names no ", method.item]) if {
	not valid_item_name
}

deny_reasons contains concat("", ["no role grants ", method.item, " ", item_name, " on server ", input.request.server]) if {
	valid_item_name
	count(granting_roles) == 0
}

deny_reasons contains violation.reason if {
	some violation in violations
}

# Why each granting role is held back, when none is left.
deny_reasons contains reason if {
	count(granting_roles) > 0
	count(active_roles) == 0
	some [role, reason] in context.role_restrictions
	role in granting_roles
}

deny_reasons contains reason if {
	some reason in context.agent_restrictions
}

valid_item_name if {
	is_string(item_name)
	item_name != ""
}

# ------------------------------------------------------------------ argument constraints

# Constraints apply to calls only: listing a tool does not pass arguments.
violations contains violation if {
	input.request.method == "tools/call"
	rule := cfg.path_arguments[input.request.tool]
	not path_within(object.get(arguments, rule.argument, null), rule.root) # a missing path is a violation too
	violation := {
		"reason": concat("", [rule.argument, " of ", input.request.tool, " must be under ", rule.root, " with no '..' segment"]),
		"message": rule.message,
	}
}

# The same test as the library's "path" constraint: no ".", "..", empty segment, "%", "\\" or NUL.
path_within(path, root) := constraints.safe_path(path, root)

violations contains violation if {
	some violation in constraints.violations
}

# Shown to the agent only when a role grants the tool: an agent must not learn anything about a
# tool it may not see.
default message_field := {}

message_field := {"message": concat("; ", sort({v.message | some v in violations}))} if {
	count(granting_roles) > 0
	count(violations) > 0
}

# ------------------------------------------------------------------ scope challenge

# A role grants the item but the token lacks the method's scope: re-consent can fix this deny, so
# the decision names the scope and the gateway answers 403 insufficient_scope (calls only).
# Only when a role grants the item: an agent must not learn anything about an item it may not see.
default required_scopes_field := {}

required_scopes_field := {"required_scopes": [method.scope]} if {
	not method.scope in input.agent.scopes
	count(granting_roles) > 0
}

# ------------------------------------------------------------------ approvals

# An allowed call of a tool named in data.portcullis.approvals.tools[server][tool] (or ["*"][tool])
# is held for a human: the gateway forwards the identical call once an approver approves it.
default require_approval_field := {}

require_approval_field := {"require_approval": {"reason": rule.reason, "ttl_seconds": rule.ttl_seconds}} if {
	allow
	input.request.method == "tools/call"
	rule := approval_rule
}

approval_rule := rule if {
	rule := cfg.approvals.tools[input.request.server][input.request.tool]
} else := rule if {
	rule := cfg.approvals.tools["*"][input.request.tool]
}

# ------------------------------------------------------------------ rate limits

# Allowed calls are counted per agent, server and tool, in the tool's class (data.portcullis.rate_limits).
default rate_limit_field := {}

rate_limit_field := {"rate_limit": {
	"key": concat(":", [input.agent.sub, input.request.server, input.request.tool]),
	"limit": class.limit,
	"window_seconds": class.window_seconds,
}} if {
	allow
	input.request.method == "tools/call"
	class := cfg.rate_limits.classes[rate_class]
}

# The tool's class on its server, else on any server ("*"), else the destructive class for a tool
# the upstream marks destructive, else the default class.
rate_class := class if {
	class := cfg.rate_limits.tools[input.request.server][input.request.tool]
} else := class if {
	class := cfg.rate_limits.tools["*"][input.request.tool]
} else := cfg.rate_limits.destructive_class if {
	context.destructive_tool
} else := cfg.rate_limits.default_class

# ------------------------------------------------------------------ masking (audit only)

# Arguments whose key looks secret, at any depth, are masked in the audit event, allowed or not.
default mask_field := {}

mask_field := {"mask": sort(masked_pointers)} if count(masked_pointers) > 0

masked_pointers contains pointer if {
	walk(arguments, [path, value])
	count(path) > 0
	secret_looking(path[count(path) - 1], value)
	segments := [pointer_segment(p) | some p in path]
	pointer := concat("/", array.concat(["", "input", "request", "arguments"], segments))
}

# RFC 6901: "~" is written "~0" and "/" is written "~1"; array indices are decimal.
pointer_segment(s) := replace(replace(s, "~", "~0"), "/", "~1") if is_string(s)

pointer_segment(n) := format_int(n, 10) if is_number(n)

# A key from secret_argument_keys (any case), or a string value, whatever its key, that starts
# with one of secret_value_prefixes (bearer tokens, JWTs, PEM keys, cloud and SaaS keys: cheap,
# on by default) or matches one of secret_value_patterns (regexes: opt-in, each match costs a
# regex compilation per decision under wasm, ~15 µs).
secret_looking(key, _) if {
	is_string(key)
	lower(key) in cfg.secret_argument_keys
}

secret_looking(_, value) if {
	is_string(value)
	some prefix in cfg.secret_value_prefixes
	startswith(value, prefix)
}

secret_looking(_, value) if {
	is_string(value)
	some pattern in cfg.secret_value_patterns
	regex.match(pattern, value)
}
