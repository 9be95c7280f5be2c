#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `mcp` 2.x) for portcullis's tests.

    mcp_client.py --url URL --token TOKEN --era 2026-07-28|2025-11-25 --script JSON
                  [--elicit-accept JSON | --elicit-decline] [--sample-text TEXT] [--no-discover]
                  [--timeout SECONDS]

The script is a JSON list of steps, run in order on one connection:
    {"op": "list_tools"}                  {"op": "call_tool", "name": "echo", "arguments": {...}}
    {"op": "list_resources"}              {"op": "read_resource", "uri": "..."}
    {"op": "list_resource_templates"}
    {"op": "list_prompts"}                {"op": "get_prompt", "name": "...", "arguments": {...}}

Eras:
  2026-07-28  `Client(mode="2026-07-28")` pins the modern wire (the SDK never sends `initialize` in this
              mode). Unless --no-discover, one `server/discover` at 2026-07-28 is sent first and adopted;
              a server that rejects it or does not list 2026-07-28 is fatal (no fallback).
  2025-11-25  `Client(mode="legacy")`: the initialize handshake (the SDK offers 2025-11-25).

Server→client input (2025: elicitation/create and sampling/createMessage requests; 2026: the same
embedded in input_required results, which the SDK answers and retries by itself) is answered with
the fixed values given on the command line and recorded in "callbacks".

stdout is ONE JSON object:
  {"negotiatedVersion", "serverInfo", "results": [one per step: result | {"error": {"code", "message"}}],
   "callbacks": [...]}                                                    exit 0
  {"fatal": "...", "code"?: int, "results": [steps done so far]}          exit 1 (connection/protocol failure)
  exit 2 on bad command-line arguments (argparse).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

MODERN_ERA = "2026-07-28"
LEGACY_ERA = "2025-11-25"
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
STEP_OPS = (
    "list_tools",
    "call_tool",
    "list_resources",
    "list_resource_templates",
    "read_resource",
    "list_prompts",
    "get_prompt",
)


class FatalError(Exception):
    """A connection or protocol failure: the run stops and reports `fatal`."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Answers:
    """Fixed answers for server→client input, and a record of every request received."""

    elicit_content: dict[str, Any] | None
    elicit_decline: bool
    sample_text: str | None
    received: list[dict[str, Any]] = field(default_factory=list)

    async def elicit(self, _ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.received.append({"kind": "elicitation", "params": dump(params)})
        if self.elicit_decline:
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content=self.elicit_content)

    async def sample(
        self, _ctx: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.received.append({"kind": "sampling", "params": dump(params)})
        assert self.sample_text is not None  # only registered when --sample-text is given
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=self.sample_text),
            model="portcullis-python-test-client",
            stop_reason="endTurn",
        )


def dump(value: BaseModel) -> Any:
    # exclude_unset: what the server sent, not the SDK model's defaults (e.g. no resultType on 2025 results).
    return value.model_dump(by_alias=True, mode="json", exclude_unset=True)


def parse_json_arg(parser: argparse.ArgumentParser, name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        parser.error(f"{name} is not JSON: {e}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MCP client (Python SDK) for portcullis tests")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help="sent as 'Authorization: Bearer TOKEN'; '' sends none")
    parser.add_argument("--era", required=True, choices=(MODERN_ERA, LEGACY_ERA))
    parser.add_argument("--script", required=True, help="JSON list of steps")
    parser.add_argument("--elicit-accept", help="JSON object: accept every elicitation with this content")
    parser.add_argument("--elicit-decline", action="store_true", help="decline every elicitation")
    parser.add_argument("--sample-text", help="answer every sampling request with this assistant text")
    parser.add_argument("--no-discover", action="store_true", help=f"{MODERN_ERA}: skip the server/discover probe")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request read timeout, seconds")
    args = parser.parse_args(argv)

    script = parse_json_arg(parser, "--script", args.script)
    if not isinstance(script, list):
        parser.error("--script must be a JSON list")
    for index, step in enumerate(script):
        if not isinstance(step, dict) or step.get("op") not in STEP_OPS:
            parser.error(f"--script step {index}: expected an object with op in {list(STEP_OPS)}")
        if step["op"] in ("call_tool", "get_prompt") and not isinstance(step.get("name"), str):
            parser.error(f"--script step {index}: {step['op']} needs a string 'name'")
        if step["op"] == "read_resource" and not isinstance(step.get("uri"), str):
            parser.error(f"--script step {index}: read_resource needs a string 'uri'")
        if "arguments" in step and not isinstance(step["arguments"], dict):
            parser.error(f"--script step {index}: 'arguments' must be an object")
    args.script = script

    if args.elicit_accept is not None:
        content = parse_json_arg(parser, "--elicit-accept", args.elicit_accept)
        if not isinstance(content, dict):
            parser.error("--elicit-accept must be a JSON object")
        args.elicit_accept = content
        if args.elicit_decline:
            parser.error("--elicit-accept and --elicit-decline exclude each other")
    return args


async def run_step(client: Client, step: dict[str, Any]) -> Any:
    op = step["op"]
    # cache_mode="bypass": every step must reach the server (the gateway is what is under test).
    if op == "list_tools":
        return dump(await client.list_tools(cache_mode="bypass"))
    if op == "call_tool":
        return dump(await client.call_tool(step["name"], step.get("arguments") or {}))
    if op == "list_resources":
        return dump(await client.list_resources(cache_mode="bypass"))
    if op == "list_resource_templates":
        return dump(await client.list_resource_templates(cache_mode="bypass"))
    if op == "read_resource":
        return dump(await client.read_resource(step["uri"], cache_mode="bypass"))
    if op == "list_prompts":
        return dump(await client.list_prompts(cache_mode="bypass"))
    if op == "get_prompt":
        arguments = {key: str(value) for key, value in (step.get("arguments") or {}).items()}
        return dump(await client.get_prompt(step["name"], arguments))
    raise AssertionError(f"unvalidated op {op!r}")  # parse_args rejects unknown ops


async def adopt_discover(client: Client) -> None:
    """Probe server/discover at 2026-07-28 and adopt it; anything else is fatal (no initialize fallback)."""
    session = client.session
    try:
        raw = await session.send_discover(MODERN_ERA)
    except MCPError as e:
        raise FatalError(f"server/discover at {MODERN_ERA} failed: {e.message}", e.code) from e
    try:
        discovered = types.DiscoverResult.model_validate(raw)
    except ValueError as e:
        raise FatalError(f"server/discover result is not a DiscoverResult: {e}") from e
    if MODERN_ERA not in discovered.supported_versions:
        raise FatalError(f"server does not speak {MODERN_ERA}: supportedVersions={discovered.supported_versions}")
    session.adopt(discovered)


def server_info_of(client: Client, results: list[Any]) -> Any:
    if client.server_info is not None:
        return dump(client.server_info)
    # 2026 without discover: every result carries the server's identity stamp in _meta.
    for result in results:
        if isinstance(result, dict) and isinstance(result.get("_meta"), dict):
            stamp = result["_meta"].get(SERVER_INFO_META_KEY)
            if stamp is not None:
                return stamp
    return None


async def run(args: argparse.Namespace, results: list[Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    answers = Answers(
        elicit_content=args.elicit_accept, elicit_decline=args.elicit_decline, sample_text=args.sample_text
    )
    # An own httpx2 client is the SDK's way to add headers (streamable_http_client has no headers arg).
    async with create_mcp_http_client(headers=headers) as http_client:
        client = Client(
            streamable_http_client(args.url, http_client=http_client),
            mode=MODERN_ERA if args.era == MODERN_ERA else "legacy",
            client_info=types.Implementation(name="portcullis-python-test-client", version="1.0.0"),
            read_timeout_seconds=args.timeout,
            elicitation_callback=answers.elicit if (args.elicit_accept is not None or args.elicit_decline) else None,
            sampling_callback=answers.sample if args.sample_text is not None else None,
            cache=None,
        )
        try:
            await client.__aenter__()
        except BaseException as e:
            # The transport's task group may wrap the handshake's MCPError in an ExceptionGroup.
            leaf = single_leaf(e)
            if isinstance(leaf, MCPError):
                what = "initialize" if args.era == LEGACY_ERA else "connect"
                raise FatalError(f"{what} failed: {leaf.message}", leaf.code) from e
            raise
        try:
            if args.era == MODERN_ERA and not args.no_discover:
                await adopt_discover(client)
            for index, step in enumerate(args.script):
                try:
                    results.append(await run_step(client, step))
                except MCPError as e:
                    results.append({"error": {"code": e.code, "message": e.message}})
                except Exception as e:
                    # E.g. a result the SDK rejects for the negotiated version (pydantic ValidationError).
                    raise FatalError(f"step {index} ({step['op']}): {type(e).__name__}: {e}") from e
            return {
                "negotiatedVersion": client.protocol_version,
                "serverInfo": server_info_of(client, results),
                "results": results,
                "callbacks": answers.received,
            }
        finally:
            await client.__aexit__(None, None, None)


def single_leaf(exc: BaseException) -> BaseException:
    """The one exception inside the (nested, single-member) ExceptionGroups anyio task groups raise."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(argv: list[str]) -> int:
    # stdout carries only the one JSON object; SDK warnings and logs go to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    warnings.simplefilter("default")
    args = parse_args(argv)
    results: list[Any] = []
    try:
        output = anyio.run(run, args, results)
    except BaseException as exc:  # noqa: BLE001 - every failure must still print one JSON object
        if isinstance(exc, KeyboardInterrupt):
            raise
        leaf = single_leaf(exc)
        report: dict[str, Any] = {
            "fatal": str(leaf) if isinstance(leaf, FatalError) else f"{type(leaf).__name__}: {leaf}",
            "results": results,
        }
        if isinstance(leaf, FatalError | MCPError) and leaf.code is not None:
            report["code"] = leaf.code
        print(json.dumps(report))
        return 1
    print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
