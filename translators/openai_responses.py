"""OpenAI Responses ("R") codec: requests, responses, errors and SSE streams.

Implements the OpenAI API reference "Responses — Create a model response" (request body and the
``response`` object) and "Responses — Streaming events", as mapped by wire-formats.md §2
(requests: 2.1 instructions, 2.2 items, 2.3 parts, 2.4 flat tools, 2.5 tool_choice, 2.6
function_call / function_call_output, 2.7 max_output_tokens, 2.9 reasoning items, 2.10 state),
§3.1-§3.4 (responses, status, usage, ids), §4.1 and §4.4 (the R grammar, the Codex path), §4.5
and §6 (errors, ``response.failed``). Codex CLI specifics follow real-clients.md ("Codex CLI").

R is stateless here: ``previous_response_id``, ``conversation`` and ``item_reference`` need a
server-side store and are rejected. The error envelope is shared with Chat Completions, so the
error functions are ``openai_chat``'s. Pure: no I/O, orjson, no regex.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from translators.canonical import (
    Block,
    BlockStart,
    BlockStop,
    CanonicalError,
    CanonicalRequest,
    CanonicalResponse,
    Delta,
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
    estimate_usage,
    new_id,
    pack_signature,
    split_extra,
    unpack_signature,
)
from translators.openai_chat import (
    _count,
    _data_url,
    _decode_image,
    _dict,
    _effort,
    _error_from_obj,
    _error_payload,
    _int,
    _number,
    _split_data_url,
    _str,
)
from translators.openai_chat import decode_error as _chat_decode_error
from translators.openai_chat import encode_error as _chat_encode_error
from translators.sse import KEEPALIVE_COMMENT, SSEEvent, encode_event

FORMAT = "openai_responses"

JSON = dict[str, Any]
_CALL_ITEMS: dict[str, Literal["function", "custom"]] = {"function_call": "function", "custom_tool_call": "custom"}
_OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")
_ASSISTANT_ITEMS = frozenset({"reasoning", "function_call", "custom_tool_call"})
_STATE_PARAMS = ("previous_response_id", "conversation")
#: ``response.failed`` error codes Codex classifies (wire-formats.md §4.1), passed through; others
#: become ``rate_limit_exceeded`` (429), ``invalid_request_error`` (other 4xx) or ``server_error``.
_FAILED_CODES = frozenset(
    {
        "context_length_exceeded",
        "insufficient_quota",
        "usage_not_included",
        "rate_limit_exceeded",
        "invalid_prompt",
        "server_error",
    }
)
_CALL_PREFIX = {"function": "fc_", "custom": "ctc_"}
#: The smallest ``max_output_tokens`` OpenAI accepts (lower values are a 400).
MIN_OUTPUT_TOKENS = 16
_INCOMPLETE: dict[str, str] = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}

# fmt: off
#: Top-level request fields with a canonical home; everything else goes to ``req.extra``.
_REQUEST_KEYS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "temperature", "top_p", "stream", "reasoning", "text", "user", "safety_identifier",
})
#: Parameters of "Create a model response" (and Codex's ``client_metadata``) with no canonical
#: home: the R client's own, so they stay out of ``req.extensions``.
_NATIVE_KEYS = frozenset({
    "background", "client_metadata", "context_management", "conversation", "include", "max_tool_calls",
    "metadata", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "service_tier", "store", "stream_options", "top_logprobs", "truncation",
})
#: Stream encoder, per open block kind: (delta event, done event, done field, fixed fields).
_STREAM_OUT: dict[str, tuple[str, str, str, JSON]] = {
    "text": ("response.output_text.delta", "response.output_text.done", "text", {"content_index": 0, "logprobs": []}),
    "refusal": ("response.refusal.delta", "response.refusal.done", "refusal", {"content_index": 0}),
    "reasoning": (
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done", "text", {"summary_index": 0},
    ),
    "function": ("response.function_call_arguments.delta", "response.function_call_arguments.done", "arguments", {}),
    "custom": ("response.custom_tool_call_input.delta", "response.custom_tool_call_input.done", "input", {}),
}
#: Canonical delta kinds each open block kind accepts.
_ACCEPTS = {
    "text": ("text", "refusal"), "refusal": ("text", "refusal"), "reasoning": ("reasoning",),
    "function": ("arguments",), "custom": ("arguments",),
}
# fmt: on


def _now() -> int:
    return int(time.time())


def _invalid(message: str, param: str = "input") -> TranslationError:
    return TranslationError(message, param=param)


# --------------------------------------------------------------------------- items <-> blocks


def _reasoning_text(item: JSON) -> str:
    """Joined ``summary_text`` parts of a reasoning item (else its ``reasoning_text`` content)."""
    for key in ("summary", "content"):
        parts = item.get(key)
        if isinstance(parts, list):
            text = "\n\n".join(t for p in parts if isinstance(p, dict) and (t := _str(p.get("text"))))
            if text:
                return text
    return ""


def _decode_reasoning_item(item: JSON) -> Reasoning:
    """A reasoning item -> Reasoning; wireshift's envelope in ``encrypted_content`` is unpacked."""
    text, encrypted = _reasoning_text(item), _str(item.get("encrypted_content"))
    envelope = unpack_signature(encrypted) if encrypted else None
    if envelope is None:
        return Reasoning(text, encrypted_content=encrypted, item_id=_str(item.get("id")), provenance=FORMAT)
    provenance = envelope.get("p")
    return Reasoning(
        text,
        signature=envelope.get("s"),
        redacted=envelope.get("r"),
        encrypted_content=envelope.get("e"),
        item_id=envelope.get("i"),
        provenance=None if provenance in (None, "unknown") else provenance,
    )


def _call_args(item: JSON) -> str:
    """A call item's arguments (``input`` for custom calls) as text; objects become compact JSON."""
    args = item.get("input" if item.get("type") == "custom_tool_call" else "arguments")
    if isinstance(args, (dict, list)):
        return dump_arguments(args)
    return args if isinstance(args, str) else ""


def _call_name(item: JSON) -> tuple[str | None, str | None]:
    """A call item's ``(name, namespace)``: a call into a ``namespace`` tool gets the flat name
    its tool was given (``namespaced_name``)."""
    name, namespace = _str(item.get("name")), _str(item.get("namespace"))
    return (namespaced_name(namespace, name) if name and namespace else name), namespace


def _decode_call(item: JSON) -> ToolCall:
    call_id, (name, namespace) = _str(item.get("call_id")) or new_id("call_"), _call_name(item)
    kind = _CALL_ITEMS[str(item.get("type"))]
    return ToolCall(call_id, name or "", _call_args(item), kind, _str(item.get("id")), namespace=namespace)


def _decode_image_part(part: JSON) -> Image:
    url = _str(part.get("image_url"))
    if url is None:
        if part.get("file_id"):
            raise _invalid("input_image given by 'file_id' cannot be translated: send the image_url (a data URL)")
        raise _invalid("input_image needs an 'image_url'")
    image = _decode_image(url)
    image.detail = _str(part.get("detail"))
    return image


def _decode_file_part(part: JSON) -> Document:
    name = _str(part.get("filename"))
    if file_data := _str(part.get("file_data")):
        media_type, data = _split_data_url(file_data) or ("application/pdf", file_data)
        return Document(media_type=media_type, data=data, filename=name)
    if url := _str(part.get("file_url")):
        return Document(url=url, filename=name)
    if file_id := _str(part.get("file_id")):
        return Document(file_id=file_id, filename=name)
    raise _invalid("input_file needs 'file_data', 'file_url' or 'file_id'")


def _content(content: Any) -> list[Block]:
    """Message content (string or part array) -> Text / Refusal / Image / Document blocks."""
    if isinstance(content, str) or content is None:
        return [Text(content)] if content else []
    if not isinstance(content, list):
        raise _invalid("message content must be a string or an array of parts")
    out: list[Block] = []
    for part in content:
        part = _dict(part)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            if text := _str(part.get("text")):
                out.append(Text(text))
        elif kind == "refusal":
            if refusal := _str(part.get("refusal")):
                out.append(Refusal(refusal))
        elif kind == "input_image":
            out.append(_decode_image_part(part))
        elif kind == "input_file":
            out.append(_decode_file_part(part))
        elif kind == "input_audio":
            raise _invalid("audio input ('input_audio') cannot be translated for this model")
        else:
            raise _invalid(f"unsupported content part type {kind!r}")
    return out


def _item_blocks(item: JSON) -> list[Block]:
    """An assistant-side item (request history or response output) -> blocks; ``[]`` for hosted
    tool items and other types without a canonical form."""
    kind = item.get("type")
    if not isinstance(kind, (str, type(None))):
        return []
    if kind == "reasoning":
        return [_decode_reasoning_item(item)]
    if kind in _CALL_ITEMS:
        return [_decode_call(item)]
    if kind == "message" or (kind is None and item.get("role") == "assistant"):
        return [b for b in _content(item.get("content")) if isinstance(b, (Text, Refusal))]
    return []


# --------------------------------------------------------------------------- request: decode


def decode_request(body: dict[str, Any]) -> CanonicalRequest:
    """Decode an R request body ("Responses — Create a model response") into a ``CanonicalRequest``.

    ``instructions`` then leading ``system``/``developer`` input messages become ``req.system``
    (later ones ``Message("system")``); a string ``input`` is one user message. Consecutive
    reasoning / assistant message / ``function_call`` / ``custom_tool_call`` items form one
    assistant turn; consecutive ``function_call_output`` / ``custom_tool_call_output`` items one
    user message of ``ToolResult``s. Reasoning items carry ``encrypted_content`` and ``item_id``
    (provenance ``openai_responses``), or what wireshift's envelope held. ``namespace`` tools are
    flattened: each function becomes a Tool named ``namespaced_name(namespace, name)`` with
    ``namespace`` set and the namespace description first, and history calls carrying
    ``namespace`` get the same flat name; custom tools keep their ``format``; hosted tools
    (``web_search``, ``file_search``, ``local_shell``, ``mcp``, …) and hosted-tool items are
    skipped. Unmapped fields (``store``, ``include``, ``prompt_cache_key``,
    ``text.verbosity``, ``service_tier``, ``client_metadata``, ``metadata``, …) go to ``req.extra``;
    fields that are not R parameters at all (``extra_body`` vendor extensions) also to
    ``req.extensions``.

    Raises ``TranslationError`` (400, naming ``param``) for a non-object body, a missing
    ``model`` or ``input``, ``previous_response_id`` / ``conversation`` / ``item_reference``
    (server-side state), ``input_audio``, images by ``file_id``, and malformed items, tools,
    ``tool_choice``, ``reasoning`` or ``text.format``.
    """
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    model = _str(body.get("model"))
    if model is None:
        raise _invalid("'model' is required and must be a non-empty string", "model")
    for param in _STATE_PARAMS:
        if body.get(param) is not None:
            raise _invalid(
                f"'{param}' is not supported: wireshift translates statelessly, so the client must send the "
                "full conversation in 'input' (with store: false, as Codex does)",
                param,
            )
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        raw_input = [{"role": "user", "content": raw_input}]
    if not isinstance(raw_input, list) or not raw_input:
        raise _invalid("'input' must be a non-empty string or array of items")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _invalid("'instructions' must be a string", "instructions")

    req = CanonicalRequest(model=model, include_usage=True, system=[Text(instructions)] if instructions else [])
    _decode_input(raw_input, req)
    req.tools = _decode_tools(body.get("tools"))
    req.tool_choice = _decode_tool_choice(body.get("tool_choice"))
    if isinstance(body.get("parallel_tool_calls"), bool):
        req.parallel_tool_calls = body["parallel_tool_calls"]
    req.max_tokens = _number(body, "max_output_tokens")
    req.temperature = _number(body, "temperature")
    req.top_p = _number(body, "top_p")
    req.stream = body.get("stream") is True
    req.reasoning = _decode_reasoning(body.get("reasoning"))
    text = body.get("text")
    if text is not None and not isinstance(text, dict):
        raise _invalid("'text' must be an object", "text")
    req.response_format = _decode_text_format(_dict(text).get("format"))
    req.user = _str(body.get("user")) or _str(body.get("safety_identifier"))
    req.extra, req.extensions = split_extra(body, _REQUEST_KEYS, _NATIVE_KEYS)
    if _str(body.get("user")) and "safety_identifier" in body:
        req.extra["safety_identifier"] = body["safety_identifier"]
    if set(_dict(text)) - {"format"}:
        req.extra["text"] = text
    return req


def _decode_input(items: list[Any], req: CanonicalRequest) -> None:
    leading = True
    turn: Message | None = None  # the assistant or tool-result message consecutive items extend
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _invalid(f"input[{i}] must be an object")
        kind, role = item.get("type"), item.get("role")
        if kind is not None and not isinstance(kind, str):
            raise _invalid(f"input[{i}].type must be a string")
        if kind == "item_reference":
            raise _invalid(
                f"input[{i}] is an item_reference: wireshift keeps no server-side state, send the item by value"
            )
        if kind in _OUTPUT_ITEMS:
            call_id = _str(item.get("call_id"))
            if call_id is None:
                raise _invalid(f"input[{i}] needs a 'call_id'")
            output, failed = item.get("output"), False
            if isinstance(output, dict):  # older Codex: {"content": …, "success": false}
                failed = output.get("success") is False
                output = output.get("content")
            parts = [p for p in _content(output) if isinstance(p, (Text, Image, Document))]
            result = ToolResult(call_id, parts, is_error=failed)
            if turn is None or turn.role != "user":
                turn = Message("user")
                req.messages.append(turn)
            turn.content.append(result)
            leading = False
        elif kind in _ASSISTANT_ITEMS or (role == "assistant" and kind in (None, "message")):
            if turn is None or turn.role != "assistant":
                turn = Message("assistant")
                req.messages.append(turn)
            turn.content += _item_blocks(item)
            leading = False
        elif kind in (None, "message") and role in ("system", "developer"):
            texts = [b for b in _content(item.get("content")) if isinstance(b, Text)]
            if leading:
                req.system += texts
            else:
                req.messages.append(Message("system", [*texts]))
            turn = None
        elif kind in (None, "message") and role == "user":
            req.messages.append(Message("user", _content(item.get("content"))))
            turn, leading = None, False
        elif kind in (None, "message"):
            raise _invalid(f"input[{i}] has an unsupported role {role!r}")
        # hosted-tool items (web_search_call, local_shell_call, compaction, …) have no canonical form


def namespaced_name(namespace: str, name: str) -> str:
    """The flat name of function ``name`` of R namespace tool ``namespace``, as Codex flattens
    it: its namespaces end in ``__`` (``mcp__github__`` + ``search``); others are joined with
    ``__``. Unique across namespaces, so other formats can tell same-named functions apart."""
    return namespace + name if namespace.endswith("_") else f"{namespace}__{name}"


def namespaced_tools(req: CanonicalRequest) -> dict[str, list[str]]:
    """``{flat name: [namespace, inner name]}`` of the request's namespaced tools, so calls can
    be given back to the client by (namespace, name), the way Codex dispatches them."""
    return {
        t.name: [t.namespace, t.name.removeprefix(namespaced_name(t.namespace, ""))] for t in req.tools if t.namespace
    }


def _decode_tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("'tools' must be an array", "tools")
    tools: list[Tool] = []
    for spec in raw:
        spec = _dict(spec)
        if spec.get("type") != "namespace":
            tools += _decode_tool(spec)
            continue
        ns, inner = _str(spec.get("name")), spec.get("tools") or []
        if ns is None or not isinstance(inner, list):
            raise _invalid("each namespace tool needs a name and a 'tools' array", "tools")
        for tool in (t for s in inner for t in _decode_tool(_dict(s))):
            tool.name, tool.namespace = namespaced_name(ns, tool.name), ns
            tool.description = "\n\n".join(d for d in (_str(spec.get("description")), tool.description) if d) or None
            tools.append(tool)
    return tools


def _decode_tool(spec: JSON) -> list[Tool]:
    """A function or custom tool spec -> ``[Tool]``; ``[]`` for hosted tools (``web_search``,
    ``file_search``, ``code_interpreter``, ``local_shell``, ``mcp``, …)."""
    kind = spec.get("type")
    if kind not in ("function", "custom"):
        return []
    name = _str(spec.get("name"))
    if name is None:
        raise _invalid("each function or custom tool needs a name", "tools")
    description = _str(spec.get("description"))
    if kind == "custom":
        return [Tool(name, description, _custom_parameters(), kind="custom", format=_dict(spec.get("format")) or None)]
    tool = Tool(name, description)
    if isinstance(params := spec.get("parameters"), dict):
        tool.parameters = params
    if isinstance(strict := spec.get("strict"), bool):
        tool.strict = strict
    return [tool]


def _custom_parameters() -> dict[str, Any]:
    """The schema a freeform (``custom``) tool gets as a function elsewhere: one string ``input``."""
    return {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


def _decode_tool_choice(choice: Any) -> ToolChoice | None:
    if choice is None or choice in ("auto", "none", "required"):
        return ToolChoice(choice) if choice else None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("function", "custom") and (name := _call_name(choice)[0]):
        return ToolChoice("tool", name)
    if isinstance(kind, str) and kind not in ("function", "custom"):
        return ToolChoice("auto")  # allowed_tools, or a hosted tool that is not translated
    raise _invalid("unsupported 'tool_choice'", "tool_choice")


def _decode_reasoning(raw: Any) -> ReasoningConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("'reasoning' must be an object", "reasoning")
    cfg = ReasoningConfig(effort=_str(raw.get("effort")), summary=_str(raw.get("summary")))
    cfg.summary = cfg.summary or _str(raw.get("generate_summary"))
    cfg.enabled = cfg.effort != "none"
    return cfg


def _decode_text_format(fmt: Any) -> dict[str, Any] | None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        return {"type": "json_schema", **{key: fmt.get(key) for key in ("name", "schema", "strict")}}
    raise _invalid("unsupported 'text.format'", "text")


# --------------------------------------------------------------------------- request: encode


def encode_request(req: CanonicalRequest, opts: EncodeOptions) -> dict[str, Any]:
    """Encode a ``CanonicalRequest`` as an R request body ("Responses — Create a model response").

    ``instructions`` is the joined system text; later system messages are ``role:"system"``
    message items. ``ToolResult``s become ``function_call_output`` (``custom_tool_call_output``
    for custom calls) items with a string ``output`` ("Error: " prefix for errors), placed before
    the rest of their user turn; their images and documents follow all outputs of the turn in one
    user message item. Assistant turns become items in block order: reasoning only when issued by
    R (``encrypted_content``; others are valid only at their issuer), ``output_text`` messages,
    ``function_call`` / ``custom_tool_call`` items with ``call_id`` and no ``id`` (§2.6). Tools
    are flat with ``strict`` explicit (false when unknown), namespaced ones too (by their flat
    names, as are their history calls), custom tools with their ``format``;
    ``max_output_tokens`` is at least ``MIN_OUTPUT_TOKENS``; ``stop``, ``top_k`` and
    ``cache_control`` are dropped; ``store`` is false and reasoning asks for
    ``include: ["reasoning.encrypted_content"]``. ``opts.include_extra`` merges ``req.extra``
    without overriding (objects merged key by key, arrays unioned). Never raises for valid input.
    """
    custom_calls = {b.id for m in req.messages for b in m.content if isinstance(b, ToolCall) and b.kind == "custom"}
    items: list[JSON] = []
    pending: list[JSON] = []  # tool-result attachments waiting for the end of the turn's outputs
    for msg in req.messages:
        if msg.role == "user":
            for block in msg.content:
                if isinstance(block, ToolResult):
                    kind = "custom_tool_call_output" if block.tool_call_id in custom_calls else "function_call_output"
                    output = _tool_output(block, pending)
                    items.append({"type": kind, "call_id": block.tool_call_id, "output": output})
            parts = [p for b in msg.content if (p := _input_part(b)) is not None]
            if parts or not any(isinstance(b, ToolResult) for b in msg.content):
                _flush(items, pending)
                items.append({"type": "message", "role": "user", "content": parts})
            continue
        _flush(items, pending)
        if msg.role == "system":
            texts = [{"type": "input_text", "text": b.text} for b in msg.content if isinstance(b, Text) and b.text]
            if texts:
                items.append({"type": "message", "role": "system", "content": texts})
        else:
            _encode_assistant(msg.content, items)
    _flush(items, pending)

    body: JSON = {"model": req.model}
    if instructions := "\n\n".join(t.text for t in req.system if t.text):
        body["instructions"] = instructions
    body["input"] = items
    if req.tools:
        body["tools"] = [_encode_tool(t) for t in req.tools]
        if req.tool_choice is not None:
            choice = req.tool_choice
            kind = next((t.kind for t in req.tools if t.name == choice.name), "function")
            body["tool_choice"] = {"type": kind, "name": choice.name} if choice.mode == "tool" else choice.mode
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = max(req.max_tokens, MIN_OUTPUT_TOKENS)
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    cfg = req.reasoning
    if cfg is not None and (cfg.enabled or _effort(cfg)):
        reasoning: JSON = {"effort": effort} if (effort := _effort(cfg)) else {}
        if cfg.enabled:
            reasoning["summary"] = cfg.summary or "auto"
            body["include"] = ["reasoning.encrypted_content"]
        body["reasoning"] = reasoning
    body["store"] = False
    if (rf := req.response_format) is not None:
        fmt: JSON = {"type": rf.get("type", "json_object")}
        if fmt["type"] == "json_schema":
            fmt.update(name=rf.get("name") or "response", schema=rf.get("schema") or {})
            if rf.get("strict") is not None:
                fmt["strict"] = rf["strict"]
        body["text"] = {"format": fmt}
    if req.stream:
        body["stream"] = True
    if req.user:
        body["user"] = req.user
    if opts.include_extra:
        for key, value in req.extra.items():
            mine = body.get(key)
            if mine is None:
                body[key] = value
            elif isinstance(mine, dict) and isinstance(value, dict):
                body[key] = {**value, **mine}
            elif isinstance(mine, list) and isinstance(value, list):
                body[key] = mine + [v for v in value if v not in mine]
    return body


def _flush(items: list[JSON], pending: list[JSON]) -> None:
    if pending:
        items.append({"type": "message", "role": "user", "content": list(pending)})
        pending.clear()


def _tool_output(result: ToolResult, pending: list[JSON]) -> str:
    """A tool result as the output string (text parts joined with newlines); images and
    documents get a placeholder line and wait in ``pending`` for a user message (§2.6)."""
    lines: list[str] = []
    for part in result.content:
        if isinstance(part, Text) or (isinstance(part, Document) and part.text is not None):
            if part.text:
                lines.append(part.text)
        elif (encoded := _input_part(part)) is not None:
            lines.append("[image attached below]" if isinstance(part, Image) else "[document attached below]")
            pending.append(encoded)
    text = "\n".join(lines)
    return (f"Error: {text}" if text else "Error") if result.is_error else text


def _input_part(block: Block) -> JSON | None:
    """A user content block -> R input part (``None`` for blank text and non-user blocks)."""
    if isinstance(block, Text):
        return {"type": "input_text", "text": block.text} if block.text.strip() else None
    if isinstance(block, Image):
        url = _data_url(block.media_type, block.data) if block.data else block.url
        return {"type": "input_image", "image_url": url, "detail": block.detail or "auto"} if url else None
    if isinstance(block, Document):
        if block.text is not None:
            return {"type": "input_text", "text": block.text}
        part: JSON = {"type": "input_file"}
        if block.data:
            part["file_data"] = _data_url(block.media_type or "application/pdf", block.data)
        elif block.url:
            part["file_url"] = block.url
        elif block.file_id:
            part["file_id"] = block.file_id
        else:
            return None
        if name := block.filename or block.title:
            part["filename"] = name
        return part
    return None


def _encode_assistant(blocks: list[Block], items: list[JSON]) -> None:
    """An assistant history turn -> items in block order; consecutive text/refusal blocks share
    one message item."""
    parts: list[JSON] = []
    for block in blocks:
        if isinstance(block, (Text, Refusal)):
            if block.text.strip():
                parts.append(_output_part(block, annotations=False))
            continue
        if parts:
            items.append({"type": "message", "role": "assistant", "content": parts})
            parts = []
        if isinstance(block, ToolCall):
            call = _call_item(block, None)
            call.pop("status", None)
            call.pop("namespace", None)  # namespaced tools go to R flat, by their flat names
            items.append(call)
        elif isinstance(block, Reasoning) and block.provenance == FORMAT:
            if encrypted := block.encrypted_content or block.signature:
                item_id = block.item_id if (block.item_id or "").startswith("rs_") else None
                items.append(_reasoning_item(item_id, block.text, encrypted))
    if parts:
        items.append({"type": "message", "role": "assistant", "content": parts})


def _encode_tool(tool: Tool) -> JSON:
    out: JSON = {"type": tool.kind, "name": tool.name}
    if tool.description:
        out["description"] = tool.description
    if tool.kind == "function":
        out["parameters"] = tool.parameters
        out["strict"] = bool(tool.strict)  # R defaults to strict: say it (§2.4, §5 row 19)
    elif tool.format:
        out["format"] = tool.format
    return out


def sanitize_passthrough(body: dict[str, Any]) -> list[str]:
    """Same-format fast path hook (an R client's raw body to an R upstream), in place.

    An R body goes as sent, except reasoning items whose ``encrypted_content`` is wireshift's own
    envelope (reasoning an earlier turn got from another format): no R upstream can decrypt it,
    so those items are dropped (wire-formats.md §2.9 rule 5). Returns one note when it drops
    any, else ``[]``. Never raises.
    """
    items = body.get("input")
    if not isinstance(items, list):
        return []
    kept = [i for i in items if not _is_envelope_item(i)]
    if len(kept) == len(items):
        return []
    body["input"] = kept
    return [f"dropped {len(items) - len(kept)} reasoning item(s) carrying wireshift envelopes, not R encrypted_content"]


def _is_envelope_item(item: Any) -> bool:
    encrypted = item.get("encrypted_content") if isinstance(item, dict) and item.get("type") == "reasoning" else None
    return isinstance(encrypted, str) and unpack_signature(encrypted) is not None


# --------------------------------------------------------------------------- output items


def _item_id(block: Block) -> str:
    """The output item id: the block's own R item id when it has the right prefix, else minted."""
    own, prefix = None, "msg_"
    if isinstance(block, (Reasoning, ToolCall)):
        own, prefix = block.item_id, "rs_" if isinstance(block, Reasoning) else _CALL_PREFIX[block.kind]
    return own if own and own.startswith(prefix) else new_id(prefix)


def _output_part(block: Text | Refusal, annotations: bool = True) -> JSON:
    if isinstance(block, Refusal):
        return {"type": "refusal", "refusal": block.text}
    part: JSON = {"type": "output_text", "text": block.text}
    return {**part, "annotations": []} if annotations else part


def _reasoning_item(item_id: str | None, text: str, encrypted: str | None) -> JSON:
    item: JSON = {"id": item_id} if item_id else {}
    item.update(type="reasoning", summary=[{"type": "summary_text", "text": text}] if text else [])
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def _call_item(call: ToolCall, item_id: str | None) -> JSON:
    item: JSON = {"id": item_id} if item_id else {}
    if call.kind == "custom":
        item.update(type="custom_tool_call", call_id=call.id, name=call.name, input=call.arguments)
    else:
        item.update(type="function_call", call_id=call.id, name=call.name, arguments=call.arguments or "{}")
        item["status"] = "completed"
    if call.namespace:
        item["namespace"] = call.namespace
    return item


def _encrypted(block: Reasoning) -> str | None:
    """``encrypted_content`` for a reasoning output item: R's own payload (which a stream carries
    as a signature delta), else wireshift's envelope so A signatures, redacted data and
    unsigned reasoning come back on the next turn (§4.4 step 6)."""
    if block.provenance == FORMAT:
        return block.encrypted_content or block.signature
    return pack_signature(block)


def _for_client(
    block: Text | Refusal | Reasoning | ToolCall, ctx: StreamContext
) -> Text | Refusal | Reasoning | ToolCall:
    """Codex parses only ``output_text`` message parts (a message with a ``refusal`` part is
    dropped whole): for it a refusal is plain text."""
    return Text(block.text) if isinstance(block, Refusal) and ctx.client == "codex" else block


def _output_item(block: Text | Refusal | Reasoning | ToolCall, item_id: str) -> JSON:
    """A complete output item (``status`` completed) for one canonical block."""
    if isinstance(block, Reasoning):
        return _reasoning_item(item_id, block.text, _encrypted(block))
    if isinstance(block, ToolCall):
        return _call_item(block, item_id)
    content = [_output_part(block)]
    return {"id": item_id, "type": "message", "role": "assistant", "status": "completed", "content": content}


def _response_obj(rid: str, created: int, model: str, status: str, output: list[JSON], usage: JSON | None) -> JSON:
    """The ``response`` object with the request echo fields the SDK's ``Response`` requires."""
    obj: JSON = {"id": rid, "object": "response", "created_at": created, "status": status, "error": None}
    obj.update(incomplete_details=None, instructions=None, model=model, output=output, parallel_tool_calls=True)
    obj.update(tool_choice="auto", tools=[], usage=usage)
    return obj


def _set_status(obj: JSON, stop: str | None) -> None:
    """Set ``status`` / ``incomplete_details`` of ``obj`` for a canonical stop reason (§3.2):
    truncation and content filtering are ``incomplete``, everything else (tool calls too) ``completed``."""
    reason = _INCOMPLETE.get(stop or "")
    obj["status"] = "incomplete" if reason else "completed"
    if reason:
        obj["incomplete_details"] = {"reason": reason}


# --------------------------------------------------------------------------- response


def _stop_reason(resp: JSON, has_calls: bool) -> StopReason:
    """R ``status`` + ``incomplete_details.reason`` -> canonical (§3.2)."""
    if resp.get("status") == "incomplete":
        reason = _dict(resp.get("incomplete_details")).get("reason")
        return "content_filter" if reason == "content_filter" else "max_tokens"
    return "tool_use" if has_calls else "end_turn"


def _decode_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details, output = _dict(raw.get("input_tokens_details")), _dict(raw.get("output_tokens_details"))
    return Usage.from_prompt_total(
        _count(raw.get("input_tokens")) or 0,
        _count(raw.get("output_tokens")) or 0,
        cache_read=_count(details.get("cached_tokens")) or 0,
        cache_write=_count(details.get("cache_write_tokens")) or 0,
        reasoning_tokens=_count(output.get("reasoning_tokens")),
    )


def _encode_usage(usage: Usage | None, ctx: StreamContext) -> JSON:
    """R usage, always complete (Codex fails the turn on a partial object, §3.3); the request
    estimate stands in for the input when the upstream reported nothing (marked ``"estimated":
    true`` when ``ctx.estimate_usage``, as is an ``estimated`` usage)."""
    usage = usage or Usage(input_tokens=ctx.estimated_input_tokens, estimated=ctx.estimate_usage)
    details = {"cached_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens}
    out: JSON = {"input_tokens": usage.prompt_total, "input_tokens_details": details}
    out.update(
        output_tokens=usage.output_tokens, output_tokens_details={"reasoning_tokens": usage.reasoning_tokens or 0}
    )
    out["total_tokens"] = usage.prompt_total + usage.output_tokens
    if usage.estimated:
        out["estimated"] = True
    return out


def _response_usage(resp: CanonicalResponse, ctx: StreamContext) -> Usage | None:
    """The response's usage, or an estimate when it has none and ``ctx.estimate_usage``."""
    if resp.usage is None and ctx.estimate_usage:
        return estimate_usage(resp.content, ctx.estimated_input_tokens)
    return resp.usage


def _output_blocks(output: list[Any]) -> list[Block]:
    return [b for item in output if isinstance(item, dict) for b in _item_blocks(item)]


def decode_response(body: dict[str, Any]) -> CanonicalResponse:
    """Decode an R ``response`` object into a ``CanonicalResponse``.

    Output items in order: reasoning (summary text, ``encrypted_content``, ``rs_`` id,
    provenance ``openai_responses``), message parts (``output_text`` -> Text, ``refusal`` ->
    Refusal), ``function_call`` / ``custom_tool_call`` (call id, ``fc_`` item id); hosted-tool
    items are skipped. Stop reason from ``status`` / ``incomplete_details`` and the calls present;
    usage per §3.3. Raises ``TranslationError`` for a ``failed`` response or one with an
    ``error`` (status from the error code, e.g. 429) and (502) for a body without ``output``.
    """
    if not isinstance(body, dict):
        raise TranslationError("upstream response body must be a JSON object", status=502)
    if body.get("status") == "failed" or body.get("error"):
        err = _failed_error(body)
        raise TranslationError(err.message, status=err.status, code=err.code)
    output = body.get("output")
    if not isinstance(output, list):
        raise TranslationError("upstream response has no output", status=502)
    content = _output_blocks(output)
    created = body.get("created_at")
    return CanonicalResponse(
        id=_str(body.get("id")),
        model=_str(body.get("model")),
        content=content,
        stop_reason=_stop_reason(body, any(isinstance(b, ToolCall) for b in content)),
        usage=_decode_usage(body.get("usage")),
        created=int(created) if isinstance(created, (int, float)) and created > 0 else None,
    )


def encode_response(resp: CanonicalResponse, ctx: StreamContext) -> dict[str, Any]:
    """Encode a ``CanonicalResponse`` as an R ``response`` object.

    ``id`` is ``ctx.response_id`` or a fresh ``resp_…``; ``model`` echoes ``ctx.model``. One
    output item per block in content order (reasoning with ``encrypted_content`` as in the
    stream, text and refusal as message items, tool calls as ``function_call`` /
    ``custom_tool_call`` items with their ``call_id`` and ``namespace`` when set), ids kept when
    they carry the right prefix and minted otherwise (refusals are text for Codex, which parses
    only ``output_text``; blank text and refusals are dropped).
    ``status`` is ``completed`` (tool calls too) or ``incomplete`` with
    ``incomplete_details.reason`` (``max_output_tokens`` / ``content_filter``); plus the
    ``output_text`` convenience field and complete usage. Never raises.
    """
    blocks = [
        _for_client(b, ctx)
        for b in resp.content
        if isinstance(b, (Reasoning, ToolCall)) or (isinstance(b, (Text, Refusal)) and b.text.strip())
    ]
    output = [_output_item(b, _item_id(b)) for b in blocks]
    rid = ctx.response_id or new_id("resp_")
    obj = _response_obj(
        rid, resp.created or _now(), ctx.model, "completed", output, _encode_usage(_response_usage(resp, ctx), ctx)
    )
    _set_status(obj, resp.stop_reason)
    obj["output_text"] = "".join(b.text for b in blocks if isinstance(b, Text))
    return obj


# --------------------------------------------------------------------------- errors


def decode_error(status: int, body: bytes) -> CanonicalError:
    """Decode an upstream error body: the OpenAI envelope shared with Chat Completions
    (``openai_chat.decode_error``, wire-formats.md §6.1). Never raises."""
    return _chat_decode_error(status, body)


def encode_error(err: CanonicalError) -> tuple[int, bytes]:
    """A CanonicalError as an R error response, ``(status, body)`` with the OpenAI envelope
    ``{"error":{message,type,param,code}}`` (``openai_chat.encode_error``). Never raises."""
    return _chat_encode_error(err)


def _failed_error(resp: JSON) -> CanonicalError:
    """``response.error`` of a failed response -> CanonicalError, status from the code
    (``rate_limit_exceeded`` / ``insufficient_quota`` 429, ``context_length_exceeded`` 400, else 500)."""
    err = resp.get("error")
    return _error_from_obj({"error": err if isinstance(err, dict) else {"message": "upstream response failed"}}, None)


# --------------------------------------------------------------------------- stream: decode

#: Text-carrying stream events: (part tag, index field, value field, is a ``.done`` event).
#: Tags: ``s`` reasoning summary, ``c`` raw reasoning text, ``t`` output_text, ``f`` refusal,
#: ``a`` call arguments / custom input.
_TEXT_EVENTS: dict[str, tuple[str, str | None, str, bool]] = {
    "response.reasoning_summary_text.delta": ("s", "summary_index", "delta", False),
    "response.reasoning_summary_text.done": ("s", "summary_index", "text", True),
    "response.reasoning_text.delta": ("c", "content_index", "delta", False),
    "response.reasoning_text.done": ("c", "content_index", "text", True),
    "response.output_text.delta": ("t", "content_index", "delta", False),
    "response.output_text.done": ("t", "content_index", "text", True),
    "response.refusal.delta": ("f", "content_index", "delta", False),
    "response.refusal.done": ("f", "content_index", "refusal", True),
    "response.function_call_arguments.delta": ("a", None, "delta", False),
    "response.function_call_arguments.done": ("a", None, "arguments", True),
    "response.custom_tool_call_input.delta": ("a", None, "delta", False),
    "response.custom_tool_call_input.done": ("a", None, "input", True),
}
_TAG_ITEM = {"s": "reasoning", "c": "reasoning", "t": "message", "f": "message", "a": "function_call"}
_TEXT_KINDS: dict[str, Literal["text", "refusal", "arguments"]] = {"t": "text", "f": "refusal", "a": "arguments"}


@dataclass(slots=True, eq=False)
class _Item:
    """``StreamDecoder`` state of one upstream output item."""

    kind: str
    item_id: str | None = None
    call_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    pending: list[str] = field(default_factory=list)  # call arguments before the block can open
    seen: set[tuple[str, Any]] = field(default_factory=set)  # parts whose text was emitted


class StreamDecoder:
    """R upstream SSE ("Responses — Streaming events") -> canonical events (wire-formats.md §4.1, §4.5).

    ``feed(ev: SSEEvent) -> list[Event]`` per SSE event, ``close() -> list[Event]`` at end of
    stream; the event type is ``data["type"]``, else ``ev.event`` (data-only streams work).
    ``response.created`` gives ``Start``; a reasoning item is one block (summary parts joined
    with a blank line, ``encrypted_content`` from ``output_item.done`` as a ``signature`` delta);
    each message content part is a Text or Refusal block opened on its first text; a call item is
    a ToolCall block opened once ``call_id`` and name are known, its arguments taken from
    ``.done`` / ``output_item.done`` when no delta came. Items are expected one at a time, as
    OpenAI sends them. ``response.completed`` / ``response.incomplete`` give usage, ``Finish``
    and ``End`` (a completed response whose items never streamed is replayed from its
    ``output``); ``response.failed`` and ``error`` give an ``ErrorEvent`` (status from the error
    code). Unknown events are ignored. Never raises: bad JSON is an ``ErrorEvent`` (502), and so
    is a stream that ends without a terminal event.
    """

    __slots__ = ("_started", "_terminal", "_next", "_open", "_closed", "_items", "_calls")

    def __init__(self) -> None:
        self._started = False
        self._terminal = False
        self._next = 0  # next canonical block index
        self._open: tuple[int, Any] | None = None  # (output_index, part) of the open block
        self._closed: set[tuple[int, Any]] = set()
        self._items: dict[int, _Item] = {}
        self._calls = 0

    def feed(self, ev: SSEEvent) -> list[Event]:
        """Translate one upstream SSE event."""
        if self._terminal:
            return []
        data = ev.data
        if data[:1] != b"{":
            data = data.strip()
            if not data or data == b"[DONE]":  # relays that append C's sentinel
                return []
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            return self._end([], ErrorEvent(CanonicalError.of(502, "upstream sent a malformed stream event")))
        kind = obj.get("type") or ev.event
        out: list[Event] = []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            if not self._started:
                self._started = True
                resp = _dict(obj.get("response"))
                out.append(Start(id=_str(resp.get("id")), model=_str(resp.get("model"))))
        elif (spec := _TEXT_EVENTS.get(str(kind))) is not None:
            self._text_event(obj, spec, out)
        elif kind == "response.output_item.added":
            self._item_added(obj, out)
        elif kind == "response.output_item.done":
            self._item_done(obj, out)
        elif kind == "response.content_part.done":
            self._part_done(obj, out)
        elif kind in ("response.completed", "response.incomplete"):
            resp = _dict(obj.get("response"))
            if kind == "response.incomplete":
                resp["status"] = "incomplete"
            return self._completed(resp, out)
        elif kind == "response.failed":
            return self._end(out, ErrorEvent(_failed_error(_dict(obj.get("response")))))
        elif kind == "error":
            return self._end(out, ErrorEvent(_error_from_obj(obj, None)))
        return self._with_start(out)

    def close(self) -> list[Event]:
        """End of the upstream stream: ``[]`` after a terminal event, else a 502 ``ErrorEvent``."""
        if self._terminal:
            return []
        return self._end([], ErrorEvent(CanonicalError.of(502, "upstream stream ended before completion")))

    def _with_start(self, out: list[Event]) -> list[Event]:
        if out and not self._started:
            self._started = True
            out.insert(0, Start())
        return out

    def _end(self, out: list[Event], last: End | ErrorEvent) -> list[Event]:
        self._terminal = True
        out.append(last)
        return self._with_start(out)

    # -- blocks

    def _item(self, d: JSON, kind: str) -> tuple[int, _Item]:
        """The item an event belongs to, by ``output_index`` (else ``item_id``); created when the
        upstream skipped ``output_item.added``."""
        o = d.get("output_index")
        if not isinstance(o, int):
            item_id = d.get("item_id") or _dict(d.get("item")).get("id")
            o = next((k for k, v in self._items.items() if item_id and v.item_id == item_id), -1)
        it = self._items.get(o)
        if it is None:
            it = self._items[o] = _Item(kind, _str(d.get("item_id")))
        return o, it

    def _ensure(self, o: int, part: Any, out: list[Event]) -> int | None:
        """The canonical index of the block for ``part`` of item ``o``, opening it (and closing
        the open one) when needed; ``None`` once that block was closed."""
        key = (o, part)
        if self._open == key:
            return self._next - 1
        if key in self._closed:
            return None
        it = self._items[o]
        block: Text | Refusal | Reasoning | ToolCall
        if part == "r":
            block = Reasoning(item_id=it.item_id, provenance=FORMAT)
        elif part == "call":
            kind = _CALL_ITEMS[it.kind]
            block = ToolCall(it.call_id or "", it.name or "", "", kind, it.item_id, namespace=it.namespace)
            self._calls += 1
        else:
            block = Refusal("") if part[0] == "f" else Text("")
        self._close(out)
        out.append(BlockStart(self._next, block))
        self._next += 1
        self._open = key
        return self._next - 1

    def _close(self, out: list[Event]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._next - 1))
            self._closed.add(self._open)
            self._open = None

    def _part(self, o: int, it: _Item, part: tuple[str, Any], value: str, out: list[Event], done: bool) -> None:
        """Text (or arguments) for one part of item ``o``: the block's delta."""
        tag = part[0]
        if tag == "a" and not (it.call_id and it.name):
            it.pending = [value] if done else [*it.pending, value]  # the block opens at output_item.done
            return
        if tag in ("s", "c") and part not in it.seen and it.seen:
            value = "\n\n" + value  # the next summary part of the same reasoning block
        it.seen.add(part)
        if (idx := self._ensure(o, "r" if tag in ("s", "c") else "call" if tag == "a" else part, out)) is not None:
            out.append(Delta(idx, "reasoning" if tag in ("s", "c") else _TEXT_KINDS[tag], value))

    # -- events

    def _text_event(self, d: JSON, spec: tuple[str, str | None, str, bool], out: list[Event]) -> None:
        tag, index_field, value_field, done = spec
        o, it = self._item(d, _TAG_ITEM[tag])
        part = (tag, _int(d.get(index_field)) if index_field else 0)
        value = d.get(value_field)
        value = dump_arguments(value) if isinstance(value, (dict, list)) else _str(value)
        if value and not (done and part in it.seen):
            self._part(o, it, part, value, out, done)

    def _item_added(self, d: JSON, out: list[Event]) -> None:
        item = _dict(d.get("item"))
        o = d.get("output_index")
        o = o if isinstance(o, int) else len(self._items)
        it = self._items[o] = _Item(str(item.get("type")), _str(item.get("id")))
        if it.kind == "reasoning":
            self._ensure(o, "r", out)
        elif it.kind in _CALL_ITEMS:
            it.call_id, (it.name, it.namespace) = _str(item.get("call_id")), _call_name(item)
            if it.call_id and it.name:
                self._ensure(o, "call", out)
                if args := _call_args(item):
                    self._part(o, it, ("a", 0), args, out, False)

    def _content_part(self, o: int, it: _Item, index: int, spec: Any, out: list[Event]) -> tuple[str, Any]:
        """A complete message content part (``output_text`` or ``refusal``): its text unless
        deltas already carried it. Returns the part key."""
        refusal = _dict(spec).get("type") == "refusal"
        part = ("f" if refusal else "t", index)
        if (value := _str(_dict(spec).get("refusal" if refusal else "text"))) and part not in it.seen:
            self._part(o, it, part, value, out, True)
        return part

    def _part_done(self, d: JSON, out: list[Event]) -> None:
        o, it = self._item(d, "message")
        if self._open == (o, self._content_part(o, it, _int(d.get("content_index")), d.get("part"), out)):
            self._close(out)

    def _item_done(self, d: JSON, out: list[Event]) -> None:
        item = _dict(d.get("item"))
        o, it = self._item(d, str(item.get("type")))
        it.item_id = it.item_id or _str(item.get("id"))
        if it.kind == "reasoning":
            if not it.seen and (text := _reasoning_text(item)):
                self._part(o, it, ("s", 0), text, out, True)
            idx = self._ensure(o, "r", out)
            if idx is not None and (encrypted := _str(item.get("encrypted_content"))):
                out.append(Delta(idx, "signature", encrypted))
        elif it.kind == "message":
            content = item.get("content")
            for index, spec in enumerate(content if isinstance(content, list) else []):
                self._content_part(o, it, index, spec, out)
        elif it.kind in _CALL_ITEMS:
            it.call_id = it.call_id or _str(item.get("call_id")) or new_id("call_")
            if not it.name:
                it.name, it.namespace = _call_name(item)
            if it.name:  # a call without a name cannot run: dropped
                self._ensure(o, "call", out)
                if ("a", 0) not in it.seen and (args := "".join(it.pending) or _call_args(item)):
                    self._part(o, it, ("a", 0), args, out, True)
        if self._open is not None and self._open[0] == o:
            self._close(out)

    def _completed(self, resp: JSON, out: list[Event]) -> list[Event]:
        self._close(out)
        output = resp.get("output")
        if self._next == 0 and isinstance(output, list):  # a stream that only sent the result
            for o, item in enumerate(output):
                self._item_done({"output_index": o, "item": item}, out)
        if (usage := _decode_usage(resp.get("usage"))) is not None:
            out.append(UsageEvent(usage))
        out.append(Finish(_stop_reason(resp, self._calls > 0)))
        return self._end(out, End())


# --------------------------------------------------------------------------- stream: encode


@dataclass(slots=True, eq=False)
class _Open:
    """``StreamEncoder`` state of the open output item (one canonical block)."""

    index: int  # canonical block index
    output_index: int
    kind: str  # text | refusal | reasoning | function | custom
    block: Text | Refusal | Reasoning | ToolCall  # its text / arguments are the pieces, joined at close
    item_id: str
    pieces: list[str] = field(default_factory=list)  # the deltas so far (no quadratic string growth)
    announced: bool = False  # output_item.added was written (text items wait for non-blank text)
    summary_open: bool = False  # reasoning: a summary part was added


class StreamEncoder:
    """Canonical events -> R SSE bytes ("Responses — Streaming events"; wire-formats.md §4.1 R
    grammar, §4.4, the Codex path).

    ``encode(events) -> bytes`` returns every frame for the events (``b""`` when there is
    nothing to write); each frame is ``event: <type>`` + ``data:`` with ``type`` and a
    ``sequence_number`` counting from 0. ``response.created`` then ``response.in_progress`` open
    the stream (synthesised when ``Start`` is missing); one id (``ctx.response_id`` or a fresh
    ``resp_…``). Every block is its own output item with the full event sequence (added ->
    part added -> deltas -> done events -> ``output_item.done`` with the complete item, which
    Codex executes); a message item is announced on its first non-blank text, so a block that
    stays blank writes nothing and takes no ``output_index``; reasoning items carry
    ``encrypted_content`` as in ``encode_response``.
    ``End`` closes the open item and writes ``response.completed`` (full output, complete usage)
    or, after a ``max_tokens`` / ``content_filter`` / ``refusal`` /
    ``model_context_window_exceeded`` finish, ``response.incomplete`` with
    ``incomplete_details`` — for ``ctx.client == "codex"`` a ``response.completed`` with status
    ``incomplete`` instead (Codex does not treat ``response.incomplete`` as terminal), and
    refusals are written as ``output_text`` for Codex.
    ``ErrorEvent`` writes ``response.failed`` with ``error.code`` from the Codex vocabulary
    (``_FAILED_CODES``, else ``rate_limit_exceeded`` / ``invalid_request_error`` /
    ``server_error`` by status); an unfinished item is abandoned, never completed (Codex would
    run a partial call). Nothing is written after a terminal event; ``KeepAlive`` is an SSE
    comment. An ``estimated`` usage (the pipeline's ``UsageEstimator`` under
    ``ctx.estimate_usage``) is marked ``"estimated": true`` in the terminal response. Never raises.
    """

    __slots__ = (
        "_ctx", "_id", "_created", "_seq", "_started", "_done", "_cur", "_output", "_usage", "_stop",
    )  # fmt: skip

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._id = ctx.response_id or new_id("resp_")
        self._created = _now()
        self._seq = 0
        self._started = False
        self._done = False
        self._cur: _Open | None = None
        self._output: list[JSON] = []  # completed items
        self._usage: Usage | None = None
        self._stop: str | None = None

    def encode(self, events: list[Event]) -> bytes:
        """Encode events in order; returns the SSE frames joined (``b""`` if none)."""
        frames: list[bytes] = []
        for ev in events:
            if self._done:
                break
            if not self._started:
                self._begin(frames)
            if isinstance(ev, Delta):
                self._delta(frames, ev)
            elif isinstance(ev, BlockStart):
                self._open(frames, ev)
            elif isinstance(ev, BlockStop):
                if self._cur is not None and self._cur.index == ev.index:
                    self._close(frames)
            elif isinstance(ev, Start):
                self._usage = ev.usage or self._usage
            elif isinstance(ev, UsageEvent):
                self._usage = ev.usage
            elif isinstance(ev, Finish):
                self._close(frames)
                self._stop = ev.stop_reason
            elif isinstance(ev, End):
                self._close(frames)
                resp = self._response("completed")
                _set_status(resp, self._stop)
                incomplete = resp["status"] == "incomplete" and self._ctx.client != "codex"
                self._event(frames, "response.incomplete" if incomplete else "response.completed", response=resp)
                self._done = True
            elif isinstance(ev, ErrorEvent):
                self._failed(frames, ev.error)
            elif isinstance(ev, KeepAlive):
                frames.append(KEEPALIVE_COMMENT)
        return b"".join(frames)

    def _event(self, frames: list[bytes], kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        frames.append(encode_event(orjson.dumps(payload), kind))

    def _item_event(self, frames: list[bytes], kind: str, cur: _Open, **fields: Any) -> None:
        self._event(frames, kind, item_id=cur.item_id, output_index=cur.output_index, **fields)

    def _response(self, status: str) -> JSON:
        usage = _encode_usage(self._usage, self._ctx)
        return _response_obj(self._id, self._created, self._ctx.model, status, list(self._output), usage)

    def _begin(self, frames: list[bytes]) -> None:
        self._started = True
        skeleton = _response_obj(self._id, self._created, self._ctx.model, "in_progress", [], None)
        self._event(frames, "response.created", response=skeleton)
        self._event(frames, "response.in_progress", response=skeleton)

    def _open(self, frames: list[bytes], ev: BlockStart) -> None:
        self._close(frames)
        src = _for_client(ev.block, self._ctx)
        block: Text | Refusal | Reasoning | ToolCall
        kind: str
        if isinstance(src, ToolCall):
            block = ToolCall(src.id or new_id("call_"), src.name, "", src.kind, src.item_id, namespace=src.namespace)
            kind, first = src.kind, Delta(ev.index, "arguments", src.arguments)
        elif isinstance(src, Reasoning):
            block, kind, first = replace(src, text=""), "reasoning", Delta(ev.index, "reasoning", src.text)
        else:
            kind = "refusal" if isinstance(src, Refusal) else "text"
            block, first = type(src)(""), Delta(ev.index, "text", src.text)
        cur = self._cur = _Open(ev.index, len(self._output), kind, block, _item_id(block))
        if kind not in ("text", "refusal"):
            self._announce(frames, cur)
        self._delta(frames, first)

    def _announce(self, frames: list[bytes], cur: _Open) -> None:
        """``output_item.added`` (and a message's ``content_part.added``) for the open item."""
        cur.announced = True
        block, item = cur.block, _output_item(cur.block, cur.item_id)
        if cur.kind in ("text", "refusal"):
            item.update(status="in_progress", content=[])
        elif cur.kind == "function":
            item.update(arguments="", status="in_progress")
        item.pop("encrypted_content", None)
        self._event(frames, "response.output_item.added", output_index=cur.output_index, item=item)
        if isinstance(block, (Text, Refusal)):
            self._item_event(frames, "response.content_part.added", cur, content_index=0, part=_output_part(block))

    def _delta(self, frames: list[bytes], ev: Delta) -> None:
        cur = self._cur
        if cur is None or cur.index != ev.index or not ev.value:
            return
        block = cur.block
        if ev.kind == "signature":
            if isinstance(block, Reasoning):
                block.signature = (block.signature or "") + ev.value
            return
        if ev.kind not in _ACCEPTS[cur.kind]:
            return
        cur.pieces.append(value := ev.value)
        if not cur.announced:  # a message item starts with its first non-blank text (§5 row 5)
            if not value.strip():
                return
            self._announce(frames, cur)
            value = "".join(cur.pieces)
        if cur.kind == "reasoning" and not cur.summary_open:
            cur.summary_open = True
            part = {"type": "summary_text", "text": ""}
            self._item_event(frames, "response.reasoning_summary_part.added", cur, summary_index=0, part=part)
        delta_type, _, _, fixed = _STREAM_OUT[cur.kind]
        self._item_event(frames, delta_type, cur, **fixed, delta=value)

    def _close(self, frames: list[bytes]) -> None:
        cur, self._cur = self._cur, None
        if cur is None or not cur.announced:
            return  # a message item that never got non-blank text was never announced
        block = cur.block
        if isinstance(block, ToolCall):
            block.arguments = "".join(cur.pieces)
        else:
            block.text = "".join(cur.pieces)
        item = _output_item(block, cur.item_id)
        _, done_type, done_field, fixed = _STREAM_OUT[cur.kind]
        if isinstance(block, ToolCall):
            self._item_event(frames, done_type, cur, **fixed, **{done_field: item[done_field]})
        elif isinstance(block, (Text, Refusal)):
            self._item_event(frames, done_type, cur, **fixed, **{done_field: block.text})
            self._item_event(frames, "response.content_part.done", cur, content_index=0, part=item["content"][0])
        elif cur.summary_open:
            self._item_event(frames, done_type, cur, **fixed, text=block.text)
            part = {"type": "summary_text", "text": block.text}
            self._item_event(frames, "response.reasoning_summary_part.done", cur, summary_index=0, part=part)
        self._event(frames, "response.output_item.done", output_index=cur.output_index, item=item)
        self._output.append(item)

    def _failed(self, frames: list[bytes], err: CanonicalError) -> None:
        self._cur = None  # an unfinished item is abandoned, never reported complete
        status, payload = _error_payload(err)
        code, message = payload["error"]["code"], payload["error"]["message"]
        if code not in _FAILED_CODES:
            code = (
                "server_error" if status >= 500 else "rate_limit_exceeded" if status == 429 else "invalid_request_error"
            )
        resp = self._response("failed")
        resp["error"] = {"code": code, "message": message}
        self._event(frames, "response.failed", response=resp)
        self._done = True
