// The builtins a policy may call, for bundles/capabilities.json (scripts/capabilities.mjs writes
// it from `opa capabilities --current`; a unit test keeps the two in step).
import { HOST_BUILTIN_NAMES } from "./builtins.js";

/** Compiled into the wasm module: `builtinsFunctions` in OPA v1.22.2 internal/compiler/wasm/wasm.go. */
export const WASM_NATIVE_BUILTINS: readonly string[] = Object.freeze(
  `abs all and any array.concat array.flatten array.reverse array.slice assign base64.decode base64.encode
  base64.is_valid base64url.decode base64url.encode bits.and bits.negate bits.or bits.lsh bits.rsh bits.xor ceil
  concat contains count div endswith equal eq floor format_int glob.match gt gte indexof internal.template_string
  intersection is_array is_boolean is_null is_number is_object is_set is_string json.filter json.is_valid
  json.marshal json.remove json.unmarshal lt lte lower max internal.member_2 internal.member_3 min minus mul
  net.cidr_contains net.cidr_intersects net.cidr_overlap neq numbers.range object.filter object.get object.keys
  object.remove object.union object.union_n or plus product graph.reachable regex.find_all_string_submatch_n
  regex.is_valid regex.match re_match rem replace strings.replace_n round set_diff sort split startswith
  strings.reverse substring sum to_number trim trim_left trim_prefix trim_right trim_suffix trim_space type_name
  union upper walk`.split(/\s+/),
);

/**
 * Implemented by @open-policy-agent/opa-wasm itself (its own win over custom builtins). `print` is
 * erased by `opa build -t wasm`, so calls to it are harmless in a bundle and handy in tests.
 */
export const SDK_BUILTINS: readonly string[] = Object.freeze([
  "sprintf",
  "regex.split",
  "yaml.is_valid",
  "yaml.marshal",
  "yaml.unmarshal",
  "print",
  "internal.print",
]);

/** Every builtin the gateway can evaluate: what bundles/capabilities.json must admit, and no more. */
export function admittedBuiltins(): string[] {
  return [...new Set([...WASM_NATIVE_BUILTINS, ...SDK_BUILTINS, ...HOST_BUILTIN_NAMES])].sort();
}
