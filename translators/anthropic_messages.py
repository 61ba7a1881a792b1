"""Anthropic Messages wire format (``POST /v1/messages``) <-> canonical.

Implements the Anthropic API reference sections "Messages" (request and response bodies),
"Streaming Messages" (the SSE event grammar) and "Errors" (the error envelope), with the mapping
rules of wire-formats.md §2 (requests), §3.1-3.4 (responses, stop reasons, usage, ids), §4.1/§4.2
(emitting A streams, the Claude Code path), §4.5 (consuming upstream SSE) and §6 (errors).

"A" below means Anthropic Messages. Everything here is pure: no I/O, orjson for JSON, no regex on
the per-chunk path. Decoders raise ``TranslationError`` (a 400 for client requests, a 502 for
malformed upstream bodies); stream decoders never raise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import orjson

from translators.canonical import (
    ERROR_TYPE_BY_STATUS,
    Block,
    BlockStart,
    BlockStop,
    CanonicalError,
    CanonicalRequest,
    CanonicalResponse,
    Delta,
    DeltaKind,
    Document,
    EncodeOptions,
    End,
    ErrorEvent,
    Event,
    Finish,
    Image,
    KeepAlive,
    Message,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Start,
    StopReason,
    StreamContext,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    TranslationError,
    Usage,
    UsageEvent,
    dump_arguments,
    error_type_for_status,
    estimate_usage,
    new_id,
    pack_signature,
    parse_arguments,
    split_extra,
    unpack_signature,
)
from translators.openai_chat import _count
from translators.sse import SSEEvent, encode_event

FORMAT = "anthropic_messages"

JSON = dict[str, Any]
ChoiceMode = Literal["auto", "none", "required", "tool"]

_KNOWN_KEYS = frozenset(
    "model messages system tools tool_choice max_tokens temperature top_p top_k stop_sequences stream thinking "
    "metadata output_config output_format".split()
)
#: Messages parameters with no canonical home: the A client's own (Claude Code sends
#: ``context_management``), so they stay out of ``req.extensions``.
_NATIVE_KEYS = frozenset("container context_management mcp_servers service_tier".split())
_STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"}
)
#: A ``error.type`` -> HTTP status (Anthropic "Errors" reference; wire-formats.md §6.1).
_STATUS_BY_ERROR_TYPE = {t: s for s, t in ERROR_TYPE_BY_STATUS.items() if s not in (502, 503)}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_CHOICE_IN: dict[str, ChoiceMode] = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}
_CHOICE_OUT = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}
#: Effort -> thinking budget when only an effort is known (wire-formats.md §2.9; higress scale).
_EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 16384, "xhigh": 32000}
_MIN_BUDGET = 1024
#: A usage key -> ``Usage`` attribute (the four keys every A usage object carries, in A's order)
_USAGE_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
)
_USAGE_TTL_FIELDS = (("ephemeral_5m_input_tokens", "cache_write_5m"), ("ephemeral_1h_input_tokens", "cache_write_1h"))
_ID_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
#: upstream delta type -> (canonical delta kind, payload field)
_DELTA_IN: dict[str, tuple[DeltaKind, str]] = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("reasoning", "thinking"),
    "signature_delta": ("signature", "signature"),
    "input_json_delta": ("arguments", "partial_json"),
}


# --------------------------------------------------------------------------- shared helpers


def _invalid(message: str, param: str) -> TranslationError:
    return TranslationError(message, param=param)


def _sanitise(tool_id: str) -> str:
    """Deterministic A tool id (``^[a-zA-Z0-9_-]+$``, wire-formats.md §3.4): other chars -> ``_``."""
    if not tool_id:
        return "toolu_empty"
    if all(c in _ID_OK for c in tool_id):
        return tool_id
    return "".join(c if c in _ID_OK else "_" for c in tool_id)


def _with_cc(block: JSON, cache_control: dict[str, Any] | None) -> JSON:
    if cache_control:
        block["cache_control"] = cache_control
    return block


def _stop_in(value: Any) -> StopReason | None:
    if value is None:
        return None
    return cast(StopReason, value) if isinstance(value, str) and value in _STOP_REASONS else "end_turn"


def _stop_out(reason: str | None, has_tool_use: bool) -> str:
    """Canonical stop reason -> A, consistent with the emitted blocks (wire-formats.md §3.1/§3.2)."""
    if reason == "content_filter":
        return "refusal"
    if reason == "error":
        return "end_turn"
    if reason in (None, "end_turn", "tool_use"):
        return "tool_use" if has_tool_use else "end_turn"
    return reason


def _decode_usage(raw: JSON, base: Usage | None = None) -> Usage:
    """A usage object -> ``Usage``; fields absent or null in ``raw`` keep ``base``'s values."""
    usage = replace(base) if base is not None else Usage()
    by_ttl = raw.get("cache_creation")
    for src, names in ((raw, _USAGE_FIELDS), (by_ttl if isinstance(by_ttl, dict) else {}, _USAGE_TTL_FIELDS)):
        for key, attr in names:
            if (value := _count(src.get(key))) is not None:
                setattr(usage, attr, value)
    return usage


def _usage_out(usage: Usage | None, ctx: StreamContext) -> JSON:
    """A usage object; without ``usage`` the request estimate stands in for the input (marked
    ``"estimated": true`` when ``ctx.estimate_usage``), as does an ``estimated`` usage."""
    usage = usage or Usage(input_tokens=ctx.estimated_input_tokens, estimated=ctx.estimate_usage)
    out = {key: getattr(usage, attr) for key, attr in _USAGE_FIELDS}
    if usage.estimated:
        out["estimated"] = True
    return out


def _envelope(block: Reasoning, foreign_signature: str | None = None) -> str:
    """wireshift's signature envelope for reasoning that has no A signature (§2.9 rule 2).

    A non-A ``signature`` (the R ``encrypted_content`` carried as a signature delta) goes into
    the envelope's encrypted payload so it survives the round trip.
    """
    encrypted = block.encrypted_content or foreign_signature or None
    return pack_signature(Reasoning(provenance=block.provenance, encrypted_content=encrypted, item_id=block.item_id))


def _error_body(err: CanonicalError) -> tuple[int, JSON]:
    """A error envelope for ``err``; context overflow becomes Claude Code's "prompt is too long"."""
    status, etype, message = err.status, err.type, err.message
    if err.code == "context_length_exceeded":
        status, etype = 400, "invalid_request_error"
        if "prompt is too long" not in message.lower():
            message = "prompt is too long: " + message
    elif etype not in _STATUS_BY_ERROR_TYPE:
        etype = error_type_for_status(status)
    return status, {"type": "error", "error": {"type": etype, "message": message}}


# --------------------------------------------------------------------------- decode request


def _decode_media(raw: JSON, image: bool) -> Image | Document:
    src = raw.get("source")
    src = src if isinstance(src, dict) else {}
    stype = src.get("type")
    kw: JSON = {"cache_control": raw.get("cache_control")}
    if stype == "base64":
        if not isinstance(src.get("data"), str) or not src["data"] or not isinstance(src.get("media_type"), str):
            raise _invalid("messages: a base64 source needs 'media_type' and non-empty 'data'", "messages")
        kw.update(media_type=src["media_type"], data=src["data"])
    elif stype == "url":
        if not isinstance(src.get("url"), str) or not src["url"]:
            raise _invalid("messages: a url source needs a non-empty 'url'", "messages")
        kw["url"] = src["url"]
    elif image:
        raise _invalid(f"messages: image source type {stype!r} cannot be translated", "messages")
    elif stype == "text":
        kw["text"] = src.get("data")
    elif stype == "file":
        kw["file_id"] = src.get("file_id")
    elif stype == "content":  # custom content document: keep its text
        parts = src.get("content")
        parts = [parts] if isinstance(parts, str) else [p.get("text", "") for p in parts or [] if isinstance(p, dict)]
        kw["text"] = "\n".join(parts)
    else:
        raise _invalid(f"messages: document source type {stype!r} cannot be translated", "messages")
    return Image(**kw) if image else Document(title=raw.get("title"), **kw)


def _decode_block(raw: Any) -> Block | None:
    """One A content block -> canonical block; ``None`` for block types wireshift skips."""
    if not isinstance(raw, dict):
        raise _invalid("messages: content blocks must be objects", "messages")
    btype = raw.get("type")
    if btype == "text":
        text = raw.get("text")
        return Text(text if isinstance(text, str) else "", raw.get("cache_control"))
    if btype == "thinking":
        text, sig = raw.get("thinking"), raw.get("signature")
        text = text if isinstance(text, str) else ""
        env = unpack_signature(sig) if isinstance(sig, str) else None
        if env is None:
            return Reasoning(text=text, signature=sig or None, provenance=FORMAT)
        return Reasoning(text=text, provenance=env.get("p"), encrypted_content=env.get("e"), item_id=env.get("i"))
    if btype == "redacted_thinking":
        return Reasoning(redacted=raw.get("data"), provenance=FORMAT)
    if btype == "tool_use":
        args = dump_arguments({} if raw.get("input") is None else raw["input"])
        return ToolCall(
            str(raw.get("id") or ""), str(raw.get("name") or ""), args, cache_control=raw.get("cache_control")
        )
    if btype == "tool_result":
        content = raw.get("content")
        parts: list[Text | Image | Document] = [Text(content)] if isinstance(content, str) and content else []
        if isinstance(content, list):
            parts = [p for p in map(_decode_block, content) if isinstance(p, (Text, Image, Document))]
        tool_use_id = str(raw.get("tool_use_id") or "")
        return ToolResult(tool_use_id, parts, raw.get("is_error") is True, raw.get("cache_control"))
    if btype in ("image", "document"):
        return _decode_media(raw, btype == "image")
    return None  # server_tool_use, web_search_tool_result, search_result, ...


def _decode_system(raw: Any) -> list[Text]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Text(raw)] if raw else []
    if not isinstance(raw, list) or not all(isinstance(b, dict) and b.get("type") == "text" for b in raw):
        raise _invalid("system: must be a string or an array of text blocks", "system")
    return [Text(str(b.get("text") or ""), b.get("cache_control")) for b in raw]


def _decode_tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("tools: must be an array", "tools")
    tools: list[Tool] = []
    for item in raw:
        if not isinstance(item, dict):
            raise _invalid("tools: every tool must be an object", "tools")
        if item.get("type") not in (None, "custom"):
            continue  # typed server tools (web_search_*, bash_*, text_editor_*, computer_*)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid("tools: every tool needs a name", "tools")
        tool = Tool(name=name, description=item.get("description"), cache_control=item.get("cache_control"))
        if isinstance(item.get("input_schema"), dict):
            tool.parameters = item["input_schema"]
        if isinstance(item.get("strict"), bool):
            tool.strict = item["strict"]
        tools.append(tool)
    return tools


def _decode_tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or raw["type"] not in _CHOICE_IN:
        raise _invalid("tool_choice: type must be one of auto, any, tool, none", "tool_choice")
    mode = _CHOICE_IN[raw["type"]]
    name = raw.get("name") if mode == "tool" else None
    if mode == "tool" and (not isinstance(name, str) or not name):
        raise _invalid("tool_choice: type 'tool' needs a name", "tool_choice")
    return ToolChoice(mode, name), (False if raw.get("disable_parallel_tool_use") is True else None)


def _decode_reasoning(thinking: Any, output_config: JSON) -> ReasoningConfig | None:
    effort = output_config.get("effort")
    effort = effort if isinstance(effort, str) else None
    if thinking is None:
        return ReasoningConfig(effort=effort) if effort else None
    ttype = thinking.get("type") if isinstance(thinking, dict) else None
    if ttype == "enabled":
        budget = thinking.get("budget_tokens")
        return ReasoningConfig(budget_tokens=budget if isinstance(budget, int) else None, effort=effort)
    if ttype == "adaptive":
        return ReasoningConfig(adaptive=True, effort=effort)
    if ttype == "disabled":
        return ReasoningConfig(enabled=False)
    raise _invalid("thinking: type must be enabled, adaptive or disabled", "thinking")


def _number(body: JSON, key: str, kinds: tuple[type, ...] = (int, float)) -> Any:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
        raise _invalid(f"{key}: must be a number", key)
    return value


def decode_request(body: dict[str, Any]) -> CanonicalRequest:
    """Decode an A ``POST /v1/messages`` body (API reference "Messages") into a ``CanonicalRequest``.

    ``body`` is the parsed JSON object. Leading ``role: "system"`` entries of ``messages`` join
    ``system``; later ones stay ``Message(role="system")``. Typed server tools and unknown block
    types are skipped; wireshift signature envelopes are unpacked into foreign ``Reasoning``.
    Unknown top-level keys (and ``output_config`` / ``metadata`` carrying more than wireshift
    maps) go to ``extra`` unchanged; keys that are not Messages parameters at all (vendor
    extensions) also to ``extensions``. Raises ``TranslationError`` (400, naming the param) for a
    non-object body, a missing model, a non-array ``messages`` or wrongly typed fields.
    """
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: a non-empty string is required", "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise _invalid("messages: an array is required", "messages")
    max_tokens = _number(body, "max_tokens", (int,))
    output_config = body.get("output_config")
    output_config = output_config if isinstance(output_config, dict) else {}
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    stop = body.get("stop_sequences") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _invalid("stop_sequences: must be an array of strings", "stop_sequences")

    req = CanonicalRequest(model=model, system=_decode_system(body.get("system")), include_usage=True)
    for i, raw in enumerate(raw_messages):
        if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant", "system"):
            raise _invalid(f"messages.{i}: role must be user, assistant or system", "messages")
        raw_content = raw.get("content")
        if not isinstance(raw_content, (str, list)):
            raise _invalid(f"messages.{i}: content must be a string or an array of blocks", "messages")
        content: list[Block] = [Text(raw_content)] if isinstance(raw_content, str) else []
        if isinstance(raw_content, list):
            content = [b for b in map(_decode_block, raw_content) if b is not None]
        if raw["role"] != "system":
            req.messages.append(Message(raw["role"], content))
            continue
        texts = [b for b in content if isinstance(b, Text)]
        if req.messages:
            req.messages.append(Message("system", [*texts]))
        else:
            req.system.extend(texts)
    req.tools = _decode_tools(body.get("tools"))
    req.tool_choice, req.parallel_tool_calls = _decode_tool_choice(body.get("tool_choice"))
    req.max_tokens = max_tokens
    req.temperature = _number(body, "temperature")
    req.top_p = _number(body, "top_p")
    req.top_k = _number(body, "top_k", (int,))
    req.stop = list(stop)
    req.stream = body.get("stream") is True
    req.reasoning = _decode_reasoning(body.get("thinking"), output_config)
    fmt = output_config.get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        req.response_format = {"type": "json_schema", "name": "output", "schema": fmt["schema"], "strict": True}
    if isinstance(metadata.get("user_id"), str):
        req.user = metadata["user_id"]
    req.extra, req.extensions = split_extra(body, _KNOWN_KEYS, _NATIVE_KEYS)
    if set(output_config) - {"effort", "format"}:
        req.extra["output_config"] = body["output_config"]
    if set(metadata) - {"user_id"}:
        req.extra["metadata"] = body["metadata"]
    return req


# --------------------------------------------------------------------------- encode request


def _encode_media(block: Image | Document) -> JSON:
    kind = "image" if isinstance(block, Image) else "document"
    if isinstance(block, Document) and block.file_id is not None:
        raise _invalid("messages: provider-scoped file ids cannot be sent to Anthropic", "messages")
    if block.data is not None:
        if isinstance(block, Image) and block.media_type not in _IMAGE_TYPES:
            raise _invalid(
                f"messages: image type {block.media_type!r} is not supported (jpeg, png, gif, webp)", "messages"
            )
        source: JSON = {"type": "base64", "media_type": block.media_type or "application/pdf", "data": block.data}
    elif isinstance(block, Document) and block.text is not None:
        source = {"type": "text", "media_type": "text/plain", "data": block.text}
    elif block.url:
        source = {"type": "url", "url": block.url}
    else:
        raise _invalid(f"messages: {kind} without data, text or url", "messages")
    out: JSON = {"type": kind, "source": source}
    if isinstance(block, Document) and (block.title or block.filename):
        out["title"] = block.title or block.filename
    return _with_cc(out, block.cache_control)


def _tool_use(call: ToolCall, tool_id: str, streaming: bool = False) -> JSON:
    args: Any = {}
    if not streaming:
        args = parse_arguments(call.arguments)
        if not isinstance(args, dict):
            args = {"value": args}
    return _with_cc({"type": "tool_use", "id": tool_id, "name": call.name, "input": args}, call.cache_control)


def _encode_block(block: Block) -> JSON | None:
    """Canonical block -> A content block; ``None`` when A must not see it (empty text,
    unsigned or foreign reasoning)."""
    if isinstance(block, (Text, Refusal)):
        if not block.text.strip():
            return None
        return _with_cc({"type": "text", "text": block.text}, block.cache_control if isinstance(block, Text) else None)
    if isinstance(block, Reasoning):
        if block.provenance != FORMAT:
            return None  # never send a synthetic or foreign signature to Anthropic (§2.9 rule 3)
        if block.redacted:
            return {"type": "redacted_thinking", "data": block.redacted}
        if block.signature:
            return {"type": "thinking", "thinking": block.text, "signature": block.signature}
        return None
    if isinstance(block, ToolCall):
        return _tool_use(block, _sanitise(block.id))
    if isinstance(block, ToolResult):
        parts = [p for p in map(_encode_block, block.content) if p is not None]
        out: JSON = {"type": "tool_result", "tool_use_id": _sanitise(block.tool_call_id)}
        if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
            out["content"] = parts[0]["text"]
        elif parts:
            out["content"] = parts
        if block.is_error:
            out["is_error"] = True
        return _with_cc(out, block.cache_control)
    return _encode_media(block)


def _encode_messages(req: CanonicalRequest, system: list[JSON]) -> list[JSON]:
    """Messages for A: leading system messages join ``system``, later ones become
    ``<system-reminder>`` user text; same-role turns merge; tool_results lead user turns."""
    messages: list[JSON] = []
    seen_turn = False
    for msg in req.messages:
        blocks = [b for b in map(_encode_block, msg.content) if b is not None]
        role = msg.role
        if role == "system":
            texts = [b for b in blocks if b["type"] == "text"]
            if not seen_turn:
                system.extend(texts)
                continue
            if not texts:
                continue
            joined = "\n".join(b["text"] for b in texts)
            if not joined.lstrip().startswith("<system-reminder>"):  # Claude Code's are already wrapped
                joined = f"<system-reminder>\n{joined}\n</system-reminder>"
            role, blocks = "user", [{"type": "text", "text": joined}]
        seen_turn = True
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    for m in messages:
        if m["role"] == "user":
            m["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable: tool_results first
    return messages


def _history_allows_thinking(messages: list[Any]) -> bool:
    """A with thinking on needs the last assistant turn, if it used tools, to start with a
    thinking block ("a final assistant message must start with a thinking block"). Works on
    encoded and on raw client messages (string content, stray non-object entries)."""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "assistant":
            content = m.get("content")
            blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
            uses_tools = any(b.get("type") == "tool_use" for b in blocks)
            return not uses_tools or blocks[0].get("type") in ("thinking", "redacted_thinking")
    return True


def _encode_thinking(req: CanonicalRequest, max_tokens: int) -> tuple[JSON | None, int]:
    """A ``thinking`` for ``req.reasoning`` and the (possibly raised) ``max_tokens``."""
    rc = req.reasoning
    if rc is None or not rc.enabled or rc.effort == "none":
        return None, max_tokens
    if rc.adaptive:
        return {"type": "adaptive"}, max_tokens
    budget = rc.budget_tokens
    if budget is None:
        budget = _EFFORT_BUDGET.get(rc.effort or "medium", _EFFORT_BUDGET["medium"])
    budget = max(budget, _MIN_BUDGET)
    if max_tokens <= budget:
        if req.max_tokens is None:
            max_tokens = budget + 1  # our own default: make room (EncodeOptions.default_max_tokens)
        elif max_tokens - 1 >= _MIN_BUDGET:
            budget = max_tokens - 1
        else:
            return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _encode_tool(tool: Tool) -> JSON:
    schema = tool.parameters or {}
    if "type" not in schema:
        schema = {"type": "object", **schema}
    elif schema["type"] != "object":
        raise _invalid(f"tools: the input schema of {tool.name!r} must have type object", "tools")
    out: JSON = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = schema
    return _with_cc(out, tool.cache_control)


def _encode_tool_choice(req: CanonicalRequest, thinking: bool) -> JSON | None:
    tc = req.tool_choice
    choice: JSON | None = None
    if tc is not None:
        mode = "auto" if thinking and tc.mode in ("required", "tool") else tc.mode
        choice = {"type": _CHOICE_OUT[mode]}
        if mode == "tool":
            if not tc.name:
                raise _invalid("tool_choice: a named tool choice needs a name", "tool_choice")
            choice["name"] = tc.name
    if req.parallel_tool_calls is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return choice


def encode_request(req: CanonicalRequest, opts: EncodeOptions) -> dict[str, Any]:
    """Encode ``req`` as an A ``POST /v1/messages`` body (API reference "Messages").

    Applies wire-formats.md §2: system blocks without empty text, merged same-role turns with
    tool_results first, sanitised tool ids, only A-signed reasoning, thinking policies (budget
    >= 1024 and < ``max_tokens``; forced tool choice downgraded to auto, sampling dropped; no
    thinking when the last tool-using assistant turn lacks a signed thinking block), sampling
    clamps. ``opts.default_max_tokens`` fills a missing ``max_tokens``; ``opts.include_extra``
    merges ``req.extra`` without overriding (dict values merged key by key). Raises
    ``TranslationError`` (400) for unsupported image types, provider-scoped file ids and
    non-object tool schemas.
    """
    system = [_with_cc({"type": "text", "text": t.text}, t.cache_control) for t in req.system if t.text.strip()]
    messages = _encode_messages(req, system)
    max_tokens = req.max_tokens if req.max_tokens is not None else opts.default_max_tokens
    thinking, max_tokens = _encode_thinking(req, max_tokens)
    if thinking is not None and not _history_allows_thinking(messages):
        thinking = None
    out: JSON = {"model": req.model, "max_tokens": max_tokens}
    if system:
        out["system"] = system
    out["messages"] = messages
    if req.tools:
        out["tools"] = [_encode_tool(t) for t in req.tools]
        choice = _encode_tool_choice(req, thinking is not None)
        if choice is not None:
            out["tool_choice"] = choice
    output_config: JSON = {}
    if thinking is not None:
        out["thinking"] = thinking
        if thinking["type"] == "adaptive" and req.reasoning and req.reasoning.effort:
            output_config["effort"] = req.reasoning.effort
    rf = req.response_format
    if rf and rf.get("type") == "json_schema" and isinstance(rf.get("schema"), dict):
        output_config["format"] = {"type": "json_schema", "schema": rf["schema"]}
    if output_config:
        out["output_config"] = output_config
    temperature, top_p, top_k = req.temperature, req.top_p, req.top_k
    if thinking is not None:
        temperature = temperature if temperature == 1 else None
        top_p = top_k = None
    if temperature is not None:
        out["temperature"] = min(temperature, 1)
        top_p = None
    if top_p is not None:
        out["top_p"] = top_p
    if top_k is not None:
        out["top_k"] = top_k
    if req.stop:
        out["stop_sequences"] = list(req.stop)
    if req.user:
        out["metadata"] = {"user_id": req.user}
    if req.stream:
        out["stream"] = True
    if opts.include_extra:
        for key, value in req.extra.items():
            mine = out.get(key)
            if mine is None:
                out[key] = value
            elif isinstance(mine, dict) and isinstance(value, dict):
                out[key] = {**value, **mine}
    return out


def _is_envelope_thinking(block: Any) -> bool:
    """A ``thinking`` block whose signature is wireshift's envelope, not an Anthropic signature."""
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return False
    signature = block.get("signature")
    return isinstance(signature, str) and unpack_signature(signature) is not None


def sanitize_passthrough(body: dict[str, Any]) -> list[str]:
    """Make an A client's raw body fit for an A upstream on the same-format fast path, in place.

    Returns a human-readable note per change: (a) ``thinking`` blocks signed with a wireshift
    envelope are dropped from assistant turns (a turn left empty is dropped; A merges the
    neighbouring same-role turns), since real Anthropic rejects them (wire-formats.md §2.9 rule
    3); (b) ``thinking`` is removed when the last tool-using assistant turn no longer starts with
    a thinking block; (c) an ``enabled`` budget not below ``max_tokens`` becomes ``max_tokens -
    1``, and ``thinking`` is removed if that is under 1024 (§2.7, §2.9). Never raises.
    """
    notes: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        dropped, kept = 0, []
        for m in messages:
            content = m.get("content") if isinstance(m, dict) and m.get("role") == "assistant" else None
            if isinstance(content, list) and any(map(_is_envelope_thinking, content)):
                m["content"] = [b for b in content if not _is_envelope_thinking(b)]
                dropped += len(content) - len(m["content"])
                if not m["content"]:
                    continue
            kept.append(m)
        if dropped:
            body["messages"] = kept
            notes.append(f"dropped {dropped} thinking block(s) signed by wireshift, not by Anthropic")
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return notes
    if isinstance(messages, list) and not _history_allows_thinking(body["messages"]):
        del body["thinking"]
        notes.append("thinking disabled: the last tool-using assistant turn does not start with a thinking block")
        return notes
    budget, max_tokens = thinking.get("budget_tokens"), body.get("max_tokens")
    if thinking["type"] != "enabled" or not isinstance(budget, int) or not isinstance(max_tokens, int):
        return notes
    if budget >= max_tokens > _MIN_BUDGET:
        thinking["budget_tokens"] = max_tokens - 1
        notes.append(f"thinking.budget_tokens lowered from {budget} to {max_tokens - 1} (below max_tokens)")
    elif budget >= max_tokens:
        del body["thinking"]
        notes.append(f"thinking disabled: a budget below max_tokens {max_tokens} would be under {_MIN_BUDGET}")
    return notes


# --------------------------------------------------------------------------- responses


def decode_response(body: dict[str, Any]) -> CanonicalResponse:
    """Decode an A ``message`` response body (API reference "Messages", response) into a
    ``CanonicalResponse``: thinking / redacted_thinking / text / tool_use blocks in order
    (server-tool blocks skipped), stop reason (unknown -> ``end_turn``), usage with cache read
    and write (5m / 1h split when given). Raises ``TranslationError`` (502) for a non-object body."""
    if not isinstance(body, dict):
        raise TranslationError("upstream response body must be a JSON object", status=502)
    content = body.get("content")
    blocks = [b for b in map(_decode_block, content if isinstance(content, list) else []) if b is not None]
    usage = body.get("usage")
    return CanonicalResponse(
        id=body.get("id"),
        model=body.get("model"),
        content=[b for b in blocks if isinstance(b, (Text, Reasoning, ToolCall))],
        stop_reason=_stop_in(body.get("stop_reason")),
        stop_sequence=body.get("stop_sequence"),
        usage=_decode_usage(usage) if isinstance(usage, dict) else None,
    )


def _reasoning_out(block: Reasoning) -> JSON:
    if block.redacted:
        return {"type": "redacted_thinking", "data": block.redacted}
    if block.signature and block.provenance == FORMAT:
        signature = block.signature
    else:
        signature = _envelope(block, block.signature)
    return {"type": "thinking", "thinking": block.text, "signature": signature}


def encode_response(resp: CanonicalResponse, ctx: StreamContext) -> dict[str, Any]:
    """Encode ``resp`` as an A ``message`` body (API reference "Messages", response).

    Shape: ``{id, type:"message", role:"assistant", model: ctx.model, content, stop_reason,
    stop_sequence, usage:{input_tokens, output_tokens, cache_creation_input_tokens,
    cache_read_input_tokens}}``. Reasoning comes first, unsigned or foreign reasoning carries a
    wireshift signature envelope, empty text is dropped, tool ids are sanitised and the stop
    reason agrees with the emitted tool_use blocks (wire-formats.md §3.1). Never raises.
    """
    content = [_reasoning_out(b) for b in resp.content if isinstance(b, Reasoning)]
    for block in resp.content:
        if isinstance(block, ToolCall):
            content.append(_tool_use(block, _sanitise(block.id) if block.id else new_id("toolu_")))
        elif isinstance(block, (Text, Refusal)) and (encoded := _encode_block(block)) is not None:
            content.append(encoded)
    has_tool_use = any(b["type"] == "tool_use" for b in content)
    return {
        "id": ctx.response_id or new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": _stop_out(resp.stop_reason, has_tool_use),
        "stop_sequence": resp.stop_sequence,
        "usage": _usage_out(_response_usage(resp, ctx), ctx),
    }


def _response_usage(resp: CanonicalResponse, ctx: StreamContext) -> Usage | None:
    """The response's usage, or an estimate when it has none and ``ctx.estimate_usage``."""
    if resp.usage is None and ctx.estimate_usage:
        return estimate_usage(resp.content, ctx.estimated_input_tokens)
    return resp.usage


# --------------------------------------------------------------------------- errors


def decode_error(status: int, body: bytes) -> CanonicalError:
    """Decode an upstream error (API reference "Errors") into a ``CanonicalError``.

    Accepts the A envelope ``{"type":"error","error":{type,message}}``, the OpenAI envelope
    ``{"error":{message,type,code,param}}`` (type kept only when it is an A type) or any text
    (truncated to 500 chars). A message containing "prompt is too long" gets
    ``code="context_length_exceeded"``. Never raises.
    """
    message: Any = None
    etype = code = param = None
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message, kind = err.get("message"), err.get("type")
            if data.get("type") == "error":
                etype = kind if isinstance(kind, str) and kind else None
            else:
                etype = kind if kind in _STATUS_BY_ERROR_TYPE else None
                code = None if err.get("code") is None else str(err["code"])
                param = None if err.get("param") is None else str(err["param"])
        else:
            message = err if isinstance(err, str) else data.get("message")
    if not isinstance(message, str) or not message:
        message = body.decode("utf-8", "replace").strip()[:500] or f"upstream returned HTTP {status}"
    if "prompt is too long" in message.lower():
        code = "context_length_exceeded"
    return CanonicalError(status, etype or error_type_for_status(status), message, param=param, code=code)


def encode_error(err: CanonicalError) -> tuple[int, bytes]:
    """Encode ``err`` as an A error response (API reference "Errors"): ``(status, body)`` with
    body ``{"type":"error","error":{"type","message"}}``. Unknown types are mapped from the status;
    ``context_length_exceeded`` becomes 400 ``invalid_request_error`` with a "prompt is too long"
    message (what Claude Code recognises). Never raises."""
    status, body = _error_body(err)
    return status, orjson.dumps(body)


# --------------------------------------------------------------------------- stream decoder


def _block_index(data: JSON) -> int | None:
    """The upstream block ``index`` of a stream event, ``None`` when absent or not an integer."""
    index = data.get("index")
    return index if isinstance(index, int) else None


class StreamDecoder:
    """A upstream SSE (API reference "Streaming Messages") -> canonical events.

    ``feed(ev: SSEEvent) -> list[Event]`` per SSE event; ``close() -> list[Event]`` at end of
    stream. The event type is ``data["type"]``, else ``ev.event`` (data-only streams work).
    Canonical block indices are dense: server-tool blocks and their deltas are skipped. The
    output follows the canonical grammar (a ``Start`` is synthesised if the upstream skipped
    ``message_start``; nothing after a terminal event). Never raises: bad JSON becomes an
    ``ErrorEvent``; a stream that ends before ``message_delta``/``message_stop`` ends in an
    ``ErrorEvent`` (502).
    """

    __slots__ = ("_started", "_done", "_finished", "_open", "_argless", "_index", "_next", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finished = False
        self._open: int | None = None  # canonical index of the open block
        self._argless = False  # the open block is a tool_use that has no arguments yet
        self._index: dict[Any, int] = {}  # upstream index -> canonical index (passed-on blocks only)
        self._next = 0
        self._usage: Usage | None = None

    def feed(self, ev: SSEEvent) -> list[Event]:
        """Translate one upstream SSE event."""
        if self._done or not ev.data.strip():
            return []
        try:
            data = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return self._terminate([], ErrorEvent(CanonicalError.of(502, "upstream sent an invalid stream event")))
        kind = data.get("type") or ev.event  # A sends both; the payload survives relays that rename events
        if kind == "message_start":
            if self._started:
                return []
            self._started = True
            msg = data.get("message")
            msg = msg if isinstance(msg, dict) else {}
            usage = msg.get("usage")
            self._usage = _decode_usage(usage) if isinstance(usage, dict) else None
            return [Start(id=msg.get("id"), model=msg.get("model"), usage=self._usage)]
        if kind == "ping":
            return [KeepAlive()] if self._started else []
        out: list[Event] = []
        if kind == "content_block_start":
            self._block_start(data, out)
        elif kind == "content_block_delta":
            delta = data.get("delta")
            spec = _DELTA_IN.get(str(delta.get("type"))) if isinstance(delta, dict) else None
            idx = self._index.get(_block_index(data))
            if spec is not None and idx is not None and idx == self._open:
                value = cast(JSON, delta).get(spec[1])
                if isinstance(value, str) and value:
                    out.append(Delta(idx, spec[0], value))
                    self._argless = self._argless and spec[0] != "arguments"
        elif kind == "content_block_stop":
            if self._open is not None and self._index.get(_block_index(data)) == self._open:
                self._close_block(out)
        elif kind == "message_delta":
            self._message_delta(data, out)
        elif kind == "message_stop":
            self._close_block(out)
            if not self._finished:
                out.append(Finish("end_turn"))
            return self._terminate(out, End())
        elif kind == "error":
            err = data.get("error")
            err = err if isinstance(err, dict) else {}
            etype, message = err.get("type"), err.get("message")
            etype = etype if isinstance(etype, str) and etype else "api_error"
            message = message if isinstance(message, str) and message else "upstream stream error"
            status = _STATUS_BY_ERROR_TYPE.get(etype, 500)
            return self._terminate(out, ErrorEvent(CanonicalError(status, etype, message)))
        return self._with_start(out)

    def close(self) -> list[Event]:
        """End of the upstream stream: ``[End()]`` after a finish, else an ``ErrorEvent`` (502)."""
        if self._done:
            return []
        if self._finished:
            return self._terminate([], End())
        return self._terminate([], ErrorEvent(CanonicalError.of(502, "upstream stream ended before completion")))

    def _with_start(self, out: list[Event]) -> list[Event]:
        if out and not self._started:
            self._started = True
            out.insert(0, Start())
        return out

    def _terminate(self, out: list[Event], last: End | ErrorEvent) -> list[Event]:
        self._done = True
        out.append(last)
        return self._with_start(out)

    def _close_block(self, out: list[Event]) -> None:
        if self._open is not None:
            if self._argless:  # ``input: {}`` and no input_json_delta: "{}", as decode_response gives
                out.append(Delta(self._open, "arguments", "{}"))
                self._argless = False
            out.append(BlockStop(self._open))
            self._open = None

    def _block_start(self, data: JSON, out: list[Event]) -> None:
        cb = data.get("content_block")
        cb = cb if isinstance(cb, dict) else {}
        btype = cb.get("type")
        first: list[tuple[DeltaKind, Any]] = []
        block: Text | Reasoning | ToolCall
        if btype == "text":
            block, first = Text(""), [("text", cb.get("text"))]
        elif btype == "thinking":
            block = Reasoning(provenance=FORMAT)
            first = [("reasoning", cb.get("thinking")), ("signature", cb.get("signature"))]
        elif btype == "redacted_thinking":
            block = Reasoning(redacted=cb.get("data"), provenance=FORMAT)
        elif btype == "tool_use":
            block = ToolCall(id=str(cb.get("id") or ""), name=str(cb.get("name") or ""))
            args = cb.get("input")
            first = [("arguments", dump_arguments(args) if isinstance(args, dict) and args else None)]
        else:
            return  # server-tool blocks: skipped with their deltas (their index is never mapped)
        self._close_block(out)
        idx = self._index[_block_index(data)] = self._open = self._next
        self._next += 1
        deltas = [Delta(idx, k, v) for k, v in first if isinstance(v, str) and v]
        out += [BlockStart(idx, block), *deltas]
        self._argless = isinstance(block, ToolCall) and not deltas

    def _message_delta(self, data: JSON, out: list[Event]) -> None:
        self._close_block(out)
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._usage = _decode_usage(usage, self._usage)
        if self._usage is not None:
            out.append(UsageEvent(self._usage))
        delta = data.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if reason is not None and not self._finished:
            self._finished = True
            out.append(Finish(_stop_in(reason) or "end_turn", cast(JSON, delta).get("stop_sequence")))


# --------------------------------------------------------------------------- stream encoder


@dataclass(slots=True)
class _Open:
    """``StreamEncoder`` state of the open canonical block at ``index``."""

    index: int
    kind: str  # "text" | "reasoning" | "redacted" | "tool"
    reasoning: Reasoning | None = None
    out: int | None = None  # A index once its content_block_start was written
    pending: str = ""  # leading blank text held until non-blank text arrives
    signed: bool = False  # an A signature_delta was forwarded
    foreign: str = ""  # non-A signature payload, carried inside the envelope


class StreamEncoder:
    """Canonical events -> A SSE bytes (API reference "Streaming Messages"; wire-formats.md §4.1/§4.2).

    ``StreamEncoder(ctx)``; ``encode(events) -> bytes`` returns every frame of the batch joined
    (``b""`` when there is nothing to write); each frame has an ``event:`` line. Guarantees one
    ``message_start`` (synthesised when ``Start`` is missing), its own dense indices, one block
    open at a time, text blocks opened on their first non-blank delta (a blank one is never
    written), a ``signature_delta`` on every thinking block (wireshift's envelope when there is
    no A signature), ``message_delta`` (stop reason consistent with the emitted tool_use blocks,
    cumulative usage) then ``message_stop``, and nothing after ``message_stop`` or ``error``.
    An ``estimated`` usage (the pipeline's ``UsageEstimator`` under ``ctx.estimate_usage``) is
    marked ``"estimated": true`` in ``message_delta``, as is ``message_start``'s input estimate
    when ``ctx.estimate_usage``. Never raises.
    """

    __slots__ = ("_ctx", "_started", "_done", "_next", "_blk", "_tool_used", "_usage", "_finish")

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._started = False
        self._done = False
        self._next = 0
        self._blk: _Open | None = None
        self._tool_used = False
        self._usage: Usage | None = None
        self._finish: Finish | None = None

    def encode(self, events: list[Event]) -> bytes:
        """Encode a batch of canonical events into A SSE frames."""
        frames: list[bytes] = []
        for ev in events:
            if self._done:
                break
            if not self._started:
                self._message_start(frames, ev.usage if isinstance(ev, Start) else None)
                if isinstance(ev, Start):
                    continue
            if isinstance(ev, Delta):
                self._delta(frames, ev)
            elif isinstance(ev, BlockStart):
                self._block_start(frames, ev)
            elif isinstance(ev, BlockStop):
                if self._blk is not None and ev.index == self._blk.index:
                    self._block_stop(frames)
            elif isinstance(ev, UsageEvent):
                self._usage = ev.usage
            elif isinstance(ev, Finish):
                self._block_stop(frames)
                self._finish = ev
            elif isinstance(ev, End):
                self._block_stop(frames)
                finish = self._finish or Finish("end_turn")
                reason = _stop_out(finish.stop_reason, self._tool_used)
                delta = {"stop_reason": reason, "stop_sequence": finish.stop_sequence}
                self._frame(
                    frames, {"type": "message_delta", "delta": delta, "usage": _usage_out(self._usage, self._ctx)}
                )
                self._frame(frames, {"type": "message_stop"})
                self._done = True
            elif isinstance(ev, ErrorEvent):
                self._frame(frames, _error_body(ev.error)[1])
                self._done = True
            elif isinstance(ev, KeepAlive):
                self._frame(frames, {"type": "ping"})
        return b"".join(frames)

    @staticmethod
    def _frame(frames: list[bytes], data: JSON) -> None:
        frames.append(encode_event(orjson.dumps(data), data["type"]))

    def _message_start(self, frames: list[bytes], usage: Usage | None) -> None:
        self._started = True
        self._usage = usage
        message: JSON = {"id": self._ctx.response_id or new_id("msg_"), "type": "message", "role": "assistant"}
        message.update(content=[], model=self._ctx.model, stop_reason=None, stop_sequence=None)
        message["usage"] = _usage_out(usage, self._ctx)
        self._frame(frames, {"type": "message_start", "message": message})

    def _open(self, frames: list[bytes], blk: _Open, block: JSON) -> None:
        blk.out = self._next
        self._next += 1
        self._frame(frames, {"type": "content_block_start", "index": blk.out, "content_block": block})

    def _emit(self, frames: list[bytes], blk: _Open, delta: JSON) -> None:
        self._frame(frames, {"type": "content_block_delta", "index": blk.out, "delta": delta})

    def _block_start(self, frames: list[bytes], ev: BlockStart) -> None:
        self._block_stop(frames)
        block, index = ev.block, ev.index
        if isinstance(block, (Text, Refusal)):
            self._blk = _Open(index, "text")
            first = [Delta(index, "text", block.text)]
        elif isinstance(block, Reasoning):
            self._blk = _Open(index, "redacted" if block.redacted else "reasoning", block)
            if block.redacted:
                self._open(frames, self._blk, {"type": "redacted_thinking", "data": block.redacted})
            else:
                self._open(frames, self._blk, {"type": "thinking", "thinking": "", "signature": ""})
            first = [Delta(index, "reasoning", block.text), Delta(index, "signature", block.signature or "")]
        else:
            self._tool_used = True
            self._blk = _Open(index, "tool")
            tool_id = _sanitise(block.id) if block.id else new_id("toolu_")
            self._open(frames, self._blk, _tool_use(block, tool_id, streaming=True))
            first = [Delta(index, "arguments", block.arguments)]
        for delta in first:
            self._delta(frames, delta)

    def _delta(self, frames: list[bytes], ev: Delta) -> None:
        blk = self._blk
        if blk is None or ev.index != blk.index or not ev.value:
            return
        kind, value = blk.kind, ev.value
        if kind == "text" and ev.kind in ("text", "refusal"):
            if blk.out is None:
                if not value.strip():
                    blk.pending += value
                    return
                value, blk.pending = blk.pending + value, ""
                self._open(frames, blk, {"type": "text", "text": ""})
            self._emit(frames, blk, {"type": "text_delta", "text": value})
        elif kind == "reasoning" and ev.kind == "reasoning":
            self._emit(frames, blk, {"type": "thinking_delta", "thinking": value})
        elif kind == "reasoning" and ev.kind == "signature":
            if blk.reasoning is not None and blk.reasoning.provenance == FORMAT:
                blk.signed = True
                self._emit(frames, blk, {"type": "signature_delta", "signature": value})
            else:
                blk.foreign += value
        elif kind == "tool" and ev.kind == "arguments":
            self._emit(frames, blk, {"type": "input_json_delta", "partial_json": value})

    def _block_stop(self, frames: list[bytes]) -> None:
        blk, self._blk = self._blk, None
        if blk is None:
            return
        if blk.kind == "reasoning" and not blk.signed and blk.reasoning is not None:
            self._emit(frames, blk, {"type": "signature_delta", "signature": _envelope(blk.reasoning, blk.foreign)})
        if blk.out is not None:
            self._frame(frames, {"type": "content_block_stop", "index": blk.out})
