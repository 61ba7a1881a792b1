"""OpenAI Chat Completions ("C") codec: requests, responses, errors and SSE streams.

Implements the OpenAI Chat Completions API reference ("Create chat completion", "The chat
completion object", "The chat completion chunk object") as mapped by wire-formats.md §2 (requests),
§3.1-§3.4 (responses, stop reasons, usage, ids), §4.1-§4.3 and §4.5 (streams) and §6 (errors).

Decoding is tolerant of the non-standard fields real upstreams and clients use
(``reasoning_content`` / ``reasoning``, LiteLLM ``thinking_blocks``, OpenRouter ``reasoning``,
legacy ``functions`` / ``function_call``); encoding emits the standard shapes plus
``reasoning_content`` and, toward C clients only (responses and streams), ``thinking_blocks``
for reasoning with a signature or other opaque payload. Pure: no I/O.
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
    estimate_usage,
    new_id,
    pack_signature,
    split_extra,
    unpack_signature,
)
from translators.sse import KEEPALIVE_COMMENT, SSEEvent, encode_event

FORMAT = "openai_chat"

_ANTHROPIC = "anthropic_messages"
_CONTEXT_CODE = "context_length_exceeded"
_CONTEXT_PHRASES = ("maximum context length", _CONTEXT_CODE, "prompt is too long")
_TOOL_KINDS = ("function", "custom")

# fmt: off
#: Top-level request fields with a canonical home; everything else goes to ``req.extra``.
_REQUEST_KEYS = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_completion_tokens", "max_tokens",
    "temperature", "top_p", "stop", "stream", "stream_options", "reasoning_effort", "reasoning",
    "response_format", "user", "safety_identifier", "n", "logprobs",
})
#: Parameters of "Create chat completion" with no canonical home: the C client's own, so they
#: stay out of ``req.extensions`` (forwarded only to a C upstream, as ``req.extra``).
_NATIVE_KEYS = frozenset({
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "metadata", "modalities",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "seed", "service_tier",
    "store", "top_logprobs", "verbosity", "web_search_options",
})
_FINISH_IN: dict[str, StopReason] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
    "content_filter": "content_filter",
}
_FINISH_OUT = {
    "max_tokens": "length", "model_context_window_exceeded": "length", "refusal": "content_filter",
    "content_filter": "content_filter",
}
#: In-stream error objects rarely carry an HTTP status: infer one from ``code`` / ``type``.
_STATUS_BY_NAME = {
    "invalid_request_error": 400, _CONTEXT_CODE: 400, "authentication_error": 401, "invalid_api_key": 401,
    "permission_error": 403, "not_found_error": 404, "model_not_found": 404, "rate_limit_error": 429,
    "rate_limit_exceeded": 429, "insufficient_quota": 429, "timeout_error": 504, "overloaded_error": 529,
}
#: Stream delta fields in the order a chunk's delta is applied: (field names, canonical kind).
_DELTA_IN: tuple[tuple[tuple[str, ...], DeltaKind], ...] = (
    (("reasoning_content", "reasoning"), "reasoning"), (("content",), "text"), (("refusal",), "refusal"),
)
_DELTA_OUT = {"text": "content", "reasoning": "reasoning_content", "refusal": "refusal"}
# fmt: on


# --------------------------------------------------------------------------- small helpers


def _int(value: Any) -> int:
    """``value`` when it is an int (not bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


#: Token counts are clamped to 0..2**53 (JSON's exact integers): a bigger upstream number must
#: not make an encoder fail on a sum orjson cannot write.
MAX_COUNT = 2**53


def _count(value: Any) -> int | None:
    """A token count: an int (not bool) clamped to ``0..MAX_COUNT``, else ``None``."""
    return min(max(value, 0), MAX_COUNT) if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _split_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<b64>`` -> ``(mime, b64)``; ``None`` for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[:-7] or "application/octet-stream", data


def _data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------- request: decode


def decode_request(body: dict[str, Any]) -> CanonicalRequest:
    """Decode a C request body ("Create chat completion") into a ``CanonicalRequest``.

    ``body`` is the parsed JSON object. Leading ``system``/``developer`` messages become
    ``req.system``; ``tool`` (and legacy ``function``) messages become one user message with a
    ``ToolResult`` each; unmapped top-level fields are kept in ``req.extra``, and those that are
    not "Create chat completion" parameters at all (``extra_body`` vendor extensions) also in
    ``req.extensions``.

    Raises ``TranslationError`` (400, naming ``param``) for a non-object body, a missing ``model``
    or ``messages``, ``n`` > 1, ``logprobs: true``, ``input_audio`` parts, and malformed
    messages, tools, ``tool_choice``, ``stop`` or ``response_format``.
    """
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    model = _str(body.get("model"))
    if model is None:
        raise TranslationError("'model' is required and must be a non-empty string", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", param="messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("'n' other than 1 is not supported by this route", param="n")
    if body.get("logprobs"):
        raise TranslationError("'logprobs' is not supported by this route", param="logprobs")

    req = CanonicalRequest(model=model)
    _decode_messages(messages, req)
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise TranslationError("'tools' must be an array", param="tools")
    req.tools = [_decode_tool(t) for t in tools]
    req.tool_choice = _decode_tool_choice(body.get("tool_choice"))
    if isinstance(body.get("parallel_tool_calls"), bool):
        req.parallel_tool_calls = body["parallel_tool_calls"]

    req.max_tokens = _number(
        body, "max_tokens" if body.get("max_completion_tokens") is None else "max_completion_tokens"
    )
    req.temperature = _number(body, "temperature")
    req.top_p = _number(body, "top_p")
    stop = body.get("stop")
    if isinstance(stop, str):
        req.stop = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        req.stop = list(stop)
    elif stop is not None:
        raise TranslationError("'stop' must be a string or an array of strings", param="stop")
    req.stream = body.get("stream") is True
    req.include_usage = req.stream and _dict(body.get("stream_options")).get("include_usage") is True
    req.reasoning = _decode_reasoning(body)
    req.response_format = _decode_response_format(body.get("response_format"))
    req.user = _str(body.get("user")) or _str(body.get("safety_identifier"))
    req.extra, req.extensions = split_extra(body, _REQUEST_KEYS, _NATIVE_KEYS)
    if _str(body.get("user")) and "safety_identifier" in body:
        req.extra["safety_identifier"] = body["safety_identifier"]
    return req


def _number(body: dict[str, Any], key: str) -> Any:
    """An optional numeric field; 400 naming ``key`` for any other type."""
    value = body.get(key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise TranslationError(f"'{key}' must be a number", param=key)


def _decode_messages(messages: list[Any], req: CanonicalRequest) -> None:
    leading = True
    legacy_id = ""  # id minted for the last legacy assistant ``function_call``, paired with ``function``
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise TranslationError(f"messages[{i}] must be an object", param="messages")
        role, content = msg.get("role"), msg.get("content")
        if role in ("system", "developer"):
            texts = _system_texts(content)
            if leading:
                req.system.extend(texts)
            else:
                req.messages.append(Message("system", [*texts]))
            continue
        leading = False
        if role == "user":
            req.messages.append(Message("user", [*_parts(content)]))
        elif role == "assistant":
            if isinstance(msg.get("function_call"), dict):
                legacy_id = f"call_fn{i}"
            req.messages.append(Message("assistant", _assistant_blocks(msg, legacy_id)))
        elif role in ("tool", "function"):
            call_id = _str(msg.get("tool_call_id")) if role == "tool" else legacy_id
            if not call_id:
                raise TranslationError(f"messages[{i}] has no 'tool_call_id'", param="messages")
            req.messages.append(Message("user", [ToolResult(call_id, _parts(content))]))
        else:
            raise TranslationError(f"messages[{i}] has an unsupported role {role!r}", param="messages")


def _system_texts(content: Any) -> list[Text]:
    if isinstance(content, list):
        return [Text(t) for p in content if isinstance(p, dict) and (t := _str(p.get("text")))]
    if isinstance(content, str) or content is None:
        return [Text(content)] if content else []
    raise TranslationError("system message content must be a string or an array of text parts", param="messages")


def _parts(content: Any) -> list[Text | Image | Document]:
    """User / tool message content (string or part array) -> canonical parts."""
    if isinstance(content, str) or content is None:
        return [Text(content)] if content else []
    if not isinstance(content, list):
        raise TranslationError("message content must be a string or an array of parts", param="messages")
    out: list[Text | Image | Document] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if text := _str(part.get("text")):
                out.append(Text(text))
        elif kind == "image_url":
            out.append(_decode_image(part.get("image_url")))
        elif kind == "file":
            out.append(_decode_file(_dict(part.get("file"))))
        elif kind == "input_audio":
            raise TranslationError("audio input ('input_audio') cannot be translated for this model", param="messages")
        else:
            raise TranslationError(f"unsupported content part type {kind!r}", param="messages")
    return out


def _decode_image(spec: Any) -> Image:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url part needs a 'url'", param="messages")
    detail = _str(spec.get("detail")) if isinstance(spec, dict) else None
    parsed = _split_data_url(url)
    if parsed is not None:
        return Image(media_type=parsed[0], data=parsed[1], detail=detail)
    return Image(url=url, detail=detail)


def _decode_file(spec: dict[str, Any]) -> Document:
    filename = _str(spec.get("filename"))
    if file_data := _str(spec.get("file_data")):
        media_type, data = _split_data_url(file_data) or ("application/pdf", file_data)
        return Document(media_type=media_type, data=data, filename=filename)
    if file_id := _str(spec.get("file_id")):
        return Document(file_id=file_id, filename=filename)
    raise TranslationError("file part needs 'file_data' or 'file_id'", param="messages")


def _assistant_blocks(msg: dict[str, Any], legacy_id: str) -> list[Block]:
    """A C assistant message (request history or response ``message``) -> ordered blocks:
    reasoning, text/refusal, tool calls. Tool calls without an id get a minted ``call_…``."""
    blocks: list[Block] = []
    thinking = msg.get("thinking_blocks")
    if isinstance(thinking, list) and thinking:
        blocks += [r for tb in thinking if (r := _decode_thinking_block(tb)) is not None]
    elif reasoning := _str(msg.get("reasoning_content")) or _str(msg.get("reasoning")):
        blocks.append(Reasoning(reasoning, provenance=FORMAT))
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            blocks.append(Text(content))
    elif isinstance(content, list):
        for part in content:
            part = _dict(part)
            if text := _str(part.get("text")):
                blocks.append(Text(text))
            elif refusal := _str(part.get("refusal")):
                blocks.append(Refusal(refusal))
    if refusal := _str(msg.get("refusal")):
        blocks.append(Refusal(refusal))
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        blocks += [_decode_tool_call(tc) for tc in calls if isinstance(tc, dict)]
    legacy = msg.get("function_call")
    if isinstance(legacy, dict):
        blocks.append(_decode_tool_call({"id": legacy_id, "function": legacy}))
    return blocks


def _arguments(spec: dict[str, Any], kind: str) -> str | None:
    """A call's (fragment of) arguments as text; some upstreams send an object: compact JSON."""
    args = spec.get("input" if kind == "custom" else "arguments")
    if isinstance(args, (dict, list)):
        return dump_arguments(args)
    return _str(args)


def _decode_tool_call(tc: dict[str, Any]) -> ToolCall:
    kind: Literal["function", "custom"] = "custom" if tc.get("type") == "custom" else "function"
    spec = _dict(tc.get(kind))
    return ToolCall(
        id=_str(tc.get("id")) or new_id("call_"),
        name=_str(spec.get("name")) or "",
        arguments=_arguments(spec, kind) or "",
        kind=kind,
    )


def _decode_thinking_block(tb: Any) -> Reasoning | None:
    """LiteLLM ``thinking_blocks`` entry -> Reasoning; a wireshift signature envelope is unpacked."""
    tb = _dict(tb)
    if tb.get("type") == "redacted_thinking":
        data = _str(tb.get("data"))
        return Reasoning(redacted=data, provenance=_ANTHROPIC) if data else None
    text = tb.get("thinking") if isinstance(tb.get("thinking"), str) else ""
    signature = _str(tb.get("signature"))
    if not text and not signature:
        return None
    envelope = unpack_signature(signature) if signature else None
    if envelope is None:
        return Reasoning(text, signature=signature, provenance=_ANTHROPIC)
    provenance = envelope.get("p")
    return Reasoning(
        text,
        encrypted_content=envelope.get("e"),
        item_id=envelope.get("i"),
        provenance=None if provenance in (None, "unknown") else provenance,
    )


def _decode_tool(tool: Any) -> Tool:
    tool = _dict(tool)
    kind = tool.get("type", "function")
    spec = _dict(tool.get(kind)) if kind in _TOOL_KINDS else {}
    name = _str(spec.get("name"))
    if name is None:
        raise TranslationError("each tool needs type 'function' or 'custom' and a name", param="tools")
    description = _str(spec.get("description"))
    if kind == "custom":
        return Tool(name=name, description=description, kind="custom")
    params = spec.get("parameters")
    strict = spec.get("strict")
    return Tool(
        name=name,
        description=description,
        parameters=params if isinstance(params, dict) else {"type": "object", "properties": {}},
        strict=strict if isinstance(strict, bool) else None,
    )


def _decode_tool_choice(choice: Any) -> ToolChoice | None:
    if choice is None or choice in ("auto", "none", "required"):
        return ToolChoice(choice) if choice else None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in _TOOL_KINDS and (name := _str(_dict(choice.get(kind)).get("name"))):
        return ToolChoice("tool", name)
    raise TranslationError("unsupported 'tool_choice'", param="tool_choice")


def _decode_reasoning(body: dict[str, Any]) -> ReasoningConfig | None:
    cfg: ReasoningConfig | None = None
    obj = body.get("reasoning")  # OpenRouter {effort, max_tokens, enabled, exclude}
    if isinstance(obj, dict):
        budget = obj.get("max_tokens")
        cfg = ReasoningConfig(
            enabled=obj.get("enabled") is not False,
            budget_tokens=budget if _int(budget) else None,
            effort=_str(obj.get("effort")),
        )
    if effort := _str(body.get("reasoning_effort")):
        cfg = cfg or ReasoningConfig()
        cfg.effort = effort
    if cfg is not None and cfg.effort == "none":
        cfg.enabled = False
    return cfg


def _decode_response_format(rf: Any) -> dict[str, Any] | None:
    kind = rf.get("type") if isinstance(rf, dict) else None
    if rf is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = _dict(rf.get("json_schema"))
        return {
            "type": "json_schema",
            "name": spec.get("name"),
            "schema": spec.get("schema"),
            "strict": spec.get("strict"),
        }
    raise TranslationError("unsupported 'response_format'", param="response_format")


# --------------------------------------------------------------------------- request: encode


def encode_request(req: CanonicalRequest, opts: EncodeOptions) -> dict[str, Any]:
    """Encode a ``CanonicalRequest`` as a C request body ("Create chat completion").

    Leading system texts become one ``system`` message; ``ToolResult`` blocks become ``tool``
    messages placed before the rest of their user turn, with tool-result images and documents
    moved into one user message after the run of tool messages (wire-formats.md §2.2, §2.6).
    ``cache_control`` and ``top_k`` are dropped. ``opts.max_tokens_field`` names the token limit
    field; ``opts.stream_usage`` adds ``stream_options.include_usage``; ``opts.include_extra``
    merges ``req.extra`` without overriding mapped keys.

    Raises ``TranslationError`` (400) for a document given only by URL (C has no such part).
    """
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(t.text for t in req.system if t.text)
    if system:
        messages.append({"role": "system", "content": system})
    pending: list[dict[str, Any]] = []  # tool-result attachments waiting for the end of a tool run
    for msg in req.messages:
        if msg.role == "user":
            _encode_user(msg.content, messages, pending)
            continue
        _flush_attachments(messages, pending)
        if msg.role == "system":
            text = "\n\n".join(b.text for b in msg.content if isinstance(b, Text) and b.text)
            messages.append({"role": "system", "content": text})
        else:
            messages.append(_encode_assistant(msg.content))
    _flush_attachments(messages, pending)

    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.tools:
        body["tools"] = [_encode_tool(t) for t in req.tools]
        if req.tool_choice is not None:
            body["tool_choice"] = _encode_tool_choice(req.tool_choice, req.tools)
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body[opts.max_tokens_field] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = list(req.stop)
    if req.stream:
        body["stream"] = True
        if opts.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if req.reasoning is not None and (effort := _effort(req.reasoning)):
        body["reasoning_effort"] = effort
    if req.response_format is not None:
        body["response_format"] = _encode_response_format(req.response_format)
    if req.user:
        body["user"] = req.user
    if opts.include_extra:
        for key, value in req.extra.items():
            body.setdefault(key, value)
    return body


def _encode_user(blocks: list[Block], out: list[dict[str, Any]], pending: list[dict[str, Any]]) -> None:
    has_results = False
    for block in blocks:
        if isinstance(block, ToolResult):
            has_results = True
            out.append(_encode_tool_result(block, pending))
    parts = [p for b in blocks if not isinstance(b, ToolResult) and (p := _encode_part(b)) is not None]
    if parts or not has_results:
        _flush_attachments(out, pending)
        single = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if single else (parts or "")})


def _flush_attachments(out: list[dict[str, Any]], pending: list[dict[str, Any]]) -> None:
    if pending:
        out.append({"role": "user", "content": list(pending)})
        pending.clear()


def _encode_tool_result(result: ToolResult, pending: list[dict[str, Any]]) -> dict[str, Any]:
    lines: list[str] = []
    for part in result.content:
        if isinstance(part, Text):
            if part.text:
                lines.append(part.text)
        elif isinstance(part, Document) and part.text is not None:
            lines.append(part.text)
        elif (encoded := _encode_part(part)) is not None:
            lines.append("[image attached below]" if isinstance(part, Image) else "[document attached below]")
            pending.append(encoded)
    text = "\n".join(lines)
    if result.is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": result.tool_call_id, "content": text}


def _encode_part(block: Block) -> dict[str, Any] | None:
    """A user content block -> C content part (``None`` for empty text and non-user blocks)."""
    if isinstance(block, Text):
        return {"type": "text", "text": block.text} if block.text.strip() else None
    if isinstance(block, Image):
        url = _data_url(block.media_type, block.data) if block.data else block.url
        if not url:
            return None
        image: dict[str, Any] = {"url": url}
        if block.detail:
            image["detail"] = block.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(block, Document):
        if block.text is not None:
            return {"type": "text", "text": block.text}
        file: dict[str, Any] = {}
        if block.data:
            file["file_data"] = _data_url(block.media_type or "application/pdf", block.data)
        elif block.file_id:
            file["file_id"] = block.file_id
        else:
            raise TranslationError("documents given by URL cannot be sent to Chat Completions", param="messages")
        if name := block.filename or block.title:
            file["filename"] = name
        return {"type": "file", "file": file}
    return None


def _encode_assistant(blocks: list[Block]) -> dict[str, Any]:
    """An assistant history turn toward a C upstream: reasoning goes as ``reasoning_content``
    text only. ``thinking_blocks`` (A signatures, wireshift envelopes) are for C clients to
    round-trip; no C upstream can verify them (wire-formats.md §2.9 rule 2)."""
    text = "".join(b.text for b in blocks if isinstance(b, (Text, Refusal)))
    calls = [_encode_tool_call(b) for b in blocks if isinstance(b, ToolCall)]
    msg: dict[str, Any] = {"role": "assistant", "content": None if calls and not text.strip() else text}
    if reasoning := "".join(b.text for b in blocks if isinstance(b, Reasoning)):
        msg["reasoning_content"] = reasoning
    if calls:
        msg["tool_calls"] = calls
    return msg


def _add_reasoning(msg: dict[str, Any], blocks: list[Block]) -> None:
    """For a C client: ``reasoning_content`` (joined text) and, when any block carries a payload,
    LiteLLM-style ``thinking_blocks`` for all of them in order, for round-tripping."""
    reasoning = [b for b in blocks if isinstance(b, Reasoning)]
    if text := "".join(r.text for r in reasoning):
        msg["reasoning_content"] = text
    if any(map(_has_payload, reasoning)):
        msg["thinking_blocks"] = [_thinking_block(r) for r in reasoning]


def _has_payload(block: Reasoning) -> bool:
    """Whether a reasoning block carries an opaque payload a C client must echo back."""
    return bool(block.signature or block.redacted or block.encrypted_content)


def _thinking_block(block: Reasoning) -> dict[str, Any]:
    """One LiteLLM-style ``thinking_blocks`` entry for a C client: redacted thinking as is, an A
    signature as is, anything else (unsigned, foreign signature, R ``encrypted_content``) in a
    wireshift envelope that ``_decode_thinking_block`` unpacks on the next turn (§2.9, §4.3 step 4)."""
    if block.redacted:
        return {"type": "redacted_thinking", "data": block.redacted}
    if block.signature and block.provenance == _ANTHROPIC:
        signature = block.signature
    else:
        encrypted = block.encrypted_content or block.signature
        signature = pack_signature(
            Reasoning(provenance=block.provenance, encrypted_content=encrypted, item_id=block.item_id)
        )
    return {"type": "thinking", "thinking": block.text, "signature": signature}


def _encode_tool_call(call: ToolCall) -> dict[str, Any]:
    if call.kind == "custom":
        return {"id": call.id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}


def _encode_tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    if tool.kind == "custom":
        return {"type": "custom", "custom": spec}
    spec["parameters"] = tool.parameters
    if tool.strict is not None:
        spec["strict"] = tool.strict
    return {"type": "function", "function": spec}


def _encode_tool_choice(choice: ToolChoice, tools: list[Tool]) -> Any:
    if choice.mode != "tool":
        return choice.mode
    kind = next((t.kind for t in tools if t.name == choice.name), "function")
    return {"type": kind, kind: {"name": choice.name}}


def _effort(cfg: ReasoningConfig) -> str | None:
    """C ``reasoning_effort`` for a reasoning config (budget -> effort as in wire-formats.md §2.9)."""
    if not cfg.enabled:
        return "none" if cfg.effort == "none" else None
    if cfg.effort:
        return cfg.effort
    if cfg.budget_tokens is not None:
        return "low" if cfg.budget_tokens <= 1024 else "medium" if cfg.budget_tokens <= 8192 else "high"
    return "medium" if cfg.adaptive else None


def _encode_response_format(rf: dict[str, Any]) -> dict[str, Any]:
    if rf.get("type") != "json_schema":
        return {"type": rf.get("type", "json_object")}
    spec: dict[str, Any] = {"name": rf.get("name") or "response", "schema": rf.get("schema") or {}}
    if rf.get("strict") is not None:
        spec["strict"] = rf["strict"]
    return {"type": "json_schema", "json_schema": spec}


def sanitize_passthrough(body: dict[str, Any]) -> list[str]:
    """Same-format fast path hook (a C client's raw body to a C upstream), the surface every
    format module shares (``anthropic_messages`` drops wireshift signatures there). A C body is
    forwarded as sent, client ``thinking_blocks`` included (an upstream such as a LiteLLM proxy
    may need them), so nothing changes and there are no notes."""
    return []


# --------------------------------------------------------------------------- response


def _stop_reason(finish: Any, has_calls: bool) -> StopReason:
    """C ``finish_reason`` -> canonical, consistent with the tool calls present (§3.1)."""
    stop = _FINISH_IN.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if stop == "tool_use" and not has_calls:
        return "end_turn"
    if stop == "end_turn" and has_calls:
        return "tool_use"
    return stop


def _finish_reason(stop: str | None, has_calls: bool) -> str:
    """Canonical stop reason -> C ``finish_reason`` (§3.2), ``tool_calls`` only with tool calls."""
    if has_calls and stop in (None, "end_turn", "tool_use"):
        return "tool_calls"
    return _FINISH_OUT.get(stop or "", "stop")


def _decode_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = _dict(raw.get("prompt_tokens_details"))
    completion = _dict(raw.get("completion_tokens_details"))
    writes = (raw.get("cache_creation_tokens"), raw.get("cache_write_tokens"), prompt.get("cache_write_tokens"))
    reasoning = completion.get("reasoning_tokens")
    return Usage.from_prompt_total(
        _count(raw.get("prompt_tokens")) or 0,
        _count(raw.get("completion_tokens")) or 0,
        cache_read=_count(prompt.get("cached_tokens")) or 0,
        cache_write=next((n for w in writes if (n := _count(w))), 0),
        reasoning_tokens=_count(reasoning),
    )


def _encode_usage(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_total,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_total + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    }
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.estimated:
        out["estimated"] = True
    return out


def _response_usage(resp: CanonicalResponse, ctx: StreamContext) -> Usage | None:
    """The response's usage, or an estimate when it has none and ``ctx.estimate_usage``."""
    if resp.usage is None and ctx.estimate_usage:
        return estimate_usage(resp.content, ctx.estimated_input_tokens)
    return resp.usage


def decode_response(body: dict[str, Any]) -> CanonicalResponse:
    """Decode a C response ("The chat completion object") into a ``CanonicalResponse``.

    Reads ``choices[0]``: message blocks as in ``decode_request``'s assistant case (reasoning
    first, ``provenance="openai_chat"``), ``finish_reason`` mapped per wire-formats.md §3.2 and
    made consistent with the tool calls present, ``usage`` per §3.3, ``id``/``model``/``created``.

    Raises ``TranslationError`` (502) when the body has no choices (e.g. an error object sent
    with a 2xx status).
    """
    choices = body.get("choices") if isinstance(body, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        err = _error_from_obj(body, 502) if isinstance(body, dict) and "error" in body else None
        raise TranslationError(err.message if err else "upstream response has no choices", status=502)
    content = _assistant_blocks(_dict(choice.get("message")), "")
    has_calls = any(isinstance(b, ToolCall) for b in content)
    created = body.get("created")
    return CanonicalResponse(
        id=_str(body.get("id")),
        model=_str(body.get("model")),
        content=content,
        stop_reason=_stop_reason(choice.get("finish_reason"), has_calls),
        usage=_decode_usage(body.get("usage")),
        created=created if _int(created) else None,
    )


def encode_response(resp: CanonicalResponse, ctx: StreamContext) -> dict[str, Any]:
    """Encode a ``CanonicalResponse`` as a C ``chat.completion`` object ("The chat completion object").

    ``id`` is ``ctx.response_id`` or a fresh ``chatcmpl-…``; ``model`` echoes ``ctx.model``.
    ``message.content`` is the joined text (``null`` when none), ``refusal`` the joined refusals,
    ``tool_calls`` only when present, plus ``reasoning_content`` / ``thinking_blocks`` for
    reasoning. Usage is always present (zeros when unknown; with ``ctx.estimate_usage`` an
    estimate marked ``"estimated": true``). Never raises for valid input.
    """
    text = "".join(b.text for b in resp.content if isinstance(b, Text))
    refusal = "".join(b.text for b in resp.content if isinstance(b, Refusal))
    calls = [_encode_tool_call(b) for b in resp.content if isinstance(b, ToolCall)]
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": refusal or None}
    if calls:
        message["tool_calls"] = calls
    _add_reasoning(message, resp.content)
    return {
        "id": ctx.response_id or new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": resp.created or _now(),
        "model": ctx.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(resp.stop_reason, bool(calls)),
            }
        ],
        "usage": _encode_usage(_response_usage(resp, ctx)),
    }


# --------------------------------------------------------------------------- errors


def decode_error(status: int, body: bytes) -> CanonicalError:
    """Decode an upstream error body (any status >= 400) into a ``CanonicalError``.

    Accepts the OpenAI envelope ``{"error":{message,type,param,code}}``, ``{"error":"text"}``,
    the Anthropic envelope ``{"type":"error","error":{type,message}}`` and non-JSON text (first
    500 characters). The canonical ``type`` follows ``status``; ``code`` is kept, and set to
    ``context_length_exceeded`` when the message says the context is too long (§6.1). Never raises.
    """
    try:
        obj = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        return _error_from_obj(obj, status)
    text = body.decode("utf-8", "replace").strip()[:500]
    return CanonicalError.of(status, text or f"upstream returned HTTP {status}", code=_context_code(text, None))


def _error_from_obj(obj: dict[str, Any], status: int | None) -> CanonicalError:
    """An error object (HTTP body or in-stream ``data``; ``status`` None) -> CanonicalError."""
    err = obj.get("error")
    err = {"message": err} if isinstance(err, str) else err if isinstance(err, dict) else obj
    code = err.get("code")
    if status is None:  # in-stream: error.status, a numeric code, or a known code / type name
        numeric = [_int(v) for v in (err.get("status"), code) if 400 <= _int(v) < 600]
        named = _STATUS_BY_NAME.get(str(code)) or _STATUS_BY_NAME.get(str(err.get("type")))
        status = numeric[0] if numeric else named or 500
    message = _str(err.get("message")) or _str(obj.get("detail")) or f"upstream returned HTTP {status}"
    code = code if isinstance(code, str) and code else None
    return CanonicalError.of(status, message, param=_str(err.get("param")), code=_context_code(message, code))


def _context_code(message: str, code: str | None) -> str | None:
    low = message.lower()
    return _CONTEXT_CODE if any(p in low for p in _CONTEXT_PHRASES) else code


def _error_payload(err: CanonicalError) -> tuple[int, dict[str, Any]]:
    """HTTP status and C error body for a CanonicalError (wire-formats.md §6.1)."""
    status = 503 if err.status == 529 else err.status if 400 <= err.status < 600 else 500
    code, message = err.code, err.message
    if code == _CONTEXT_CODE:
        status, kind = 400, "invalid_request_error"
    elif status == 402 or code == "insufficient_quota":
        status, kind, code = 429, "insufficient_quota", "insufficient_quota"
    elif status == 429:
        kind, code = "rate_limit_error", code or "rate_limit_exceeded"
        message += _retry_hint(err.retry_after, message)
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "permission_error" if status == 403 else "invalid_request_error"
        code = code or {401: "invalid_api_key", 404: "model_not_found"}.get(status)
    return status, {"error": {"message": message, "type": kind, "param": err.param, "code": code}}


def _retry_hint(retry_after: str | None, message: str) -> str:
    try:
        seconds = float(retry_after or "")
    except ValueError:
        return ""
    return "" if "try again" in message.lower() else f" Please try again in {seconds:g}s."


def encode_error(err: CanonicalError) -> tuple[int, bytes]:
    """A CanonicalError as a C error response: ``(status, JSON body)``.

    Body ``{"error":{message,type,param,code}}`` (OpenAI error codes guide). 529 becomes 503;
    402 / ``insufficient_quota`` become 429 ``insufficient_quota``; 429 gets ``rate_limit_exceeded``
    and a "Please try again in Ns." hint from ``retry_after``; ``context_length_exceeded`` is a 400;
    401 / 404 default to codes ``invalid_api_key`` / ``model_not_found``; 5xx type ``server_error``.
    """
    status, payload = _error_payload(err)
    return status, orjson.dumps(payload)


# --------------------------------------------------------------------------- stream: decode


@dataclass(slots=True, eq=False)
class _Call:
    """One upstream tool call being assembled (wire-formats.md §4.2 step 4)."""

    id: str | None
    kind: Literal["function", "custom"]
    name: str = ""
    args: list[str] = field(default_factory=list)
    index: int = -1  # canonical block index once started
    done: bool = False


def _starts_new_call(call: _Call, call_id: str | None, name: str | None) -> bool:
    """Whether a fragment for ``call``'s slot is another call (upstreams that reuse an index for
    parallel calls, wire-formats.md §4.2 step 4, §5 row 2): a different ``id``, or a ``name``
    without the call's ``id`` once the call has one, unless the same name is repeated before the
    call's arguments are complete."""
    if call_id and call.id and call_id != call.id:
        return True
    if not name or not call.name or (call_id and call_id == call.id):
        return False
    return name != call.name or _args_complete(call.args)


def _args_complete(args: list[str]) -> bool:
    """Whether a call's arguments so far form a complete JSON object (its fragments are over)."""
    text = "".join(args).rstrip()
    if not text.endswith("}"):
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


class StreamDecoder:
    """C upstream ``chat.completion.chunk`` SSE events -> canonical events ("The chat completion
    chunk object"; wire-formats.md §4.2, §4.5).

    ``feed(ev: SSEEvent) -> list[Event]`` per SSE event, ``close() -> list[Event]`` at end of
    stream. Never raises: malformed JSON and ``{"error":…}`` chunks become a terminal
    ``ErrorEvent``; a stream that ends without ``finish_reason`` or ``[DONE]`` ends with a 502
    ``ErrorEvent``. Tool calls are keyed by ``index`` (else ``id``, else position in the array)
    and ``id``, a second name at one index being a new call (``_starts_new_call``); object
    arguments become compact JSON text. A call's block opens once id and name are known (earlier
    argument fragments are buffered); interleaved parallel calls are buffered and each emitted
    as one contiguous block. ``Finish`` comes at ``finish_reason``
    (usage, usually in a later chunk, follows as ``UsageEvent``); ``End`` at ``[DONE]`` or close.
    """

    __slots__ = (
        "_started", "_terminal", "_finished", "_next", "_open", "_calls", "_slots", "_live", "_tail", "_emitted_calls", "_usage",
    )  # fmt: skip

    def __init__(self) -> None:
        self._started = False
        self._terminal = False
        self._finished = False
        self._next = 0  # next canonical block index; the open block (if any) is _next - 1
        self._open: str | None = None  # kind of the open block: text / reasoning / refusal / tool
        self._calls: list[_Call] = []
        self._slots: dict[int, _Call] = {}  # upstream tool_calls[].index -> latest call there
        self._live: _Call | None = None  # the call whose block is open
        self._tail: list[list[Any]] = []  # [kind, text] arriving after tool calls, emitted at finish
        self._emitted_calls = 0
        self._usage: Usage | None = None

    def feed(self, ev: SSEEvent) -> list[Event]:
        """Translate one SSE event; returns the canonical events it completes (maybe none)."""
        if self._terminal:
            return []
        data = ev.data
        if data[:1] != b"{":  # rare: sentinel, blank data, or garbage
            data = data.strip()
            if data == b"[DONE]":
                return self._done()
            if not data:
                return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            return self._fail(CanonicalError.of(502, "upstream sent a malformed stream chunk"))
        if chunk.get("error") is not None or ev.event == "error":
            return self._fail(_error_from_obj(chunk, None))
        out: list[Event] = []
        if not self._started:
            self._started = True
            out.append(Start(id=_str(chunk.get("id")), model=_str(chunk.get("model"))))
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0 and not self._finished:
                    self._choice(choice, out)
        usage = _decode_usage(chunk.get("usage"))
        if usage is not None and usage != self._usage:
            self._usage = usage
            out.append(UsageEvent(usage))
        return out

    def close(self) -> list[Event]:
        """End of the upstream stream: ``End`` after a finish, else a 502 ``ErrorEvent``."""
        if self._terminal:
            return []
        self._terminal = True
        if self._finished:
            return [End()]
        return [ErrorEvent(CanonicalError.of(502, "upstream stream ended before completion"))]

    # -- chunk handling

    def _choice(self, choice: dict[str, Any], out: list[Event]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for keys, kind in _DELTA_IN:
                value = next((v for k in keys if (v := _str(delta.get(k)))), None)
                if value:
                    self._text(kind, value, out)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for position, tc in enumerate(calls):
                    if isinstance(tc, dict):
                        self._tool_fragment(tc, position, out)
        finish = choice.get("finish_reason")
        if finish:
            self._finish(finish, out)

    def _done(self) -> list[Event]:
        if not self._started:
            return self._fail(CanonicalError.of(502, "upstream stream ended before completion"))
        out: list[Event] = []
        if not self._finished:
            self._finish(None, out)
        self._terminal = True
        out.append(End())
        return out

    def _fail(self, err: CanonicalError) -> list[Event]:
        self._terminal = True
        return [ErrorEvent(err)]

    def _finish(self, finish: Any, out: list[Event]) -> None:
        self._close(out)
        for call in self._calls:
            if call.done or not call.name:
                call.done = True  # a call that never got a name cannot be executed: drop it
                continue
            call.id = call.id or new_id("call_")
            self._start_call(call, out)
            self._close(out)
        for kind, text in self._tail:
            self._text(kind, text, out, tail=False)
        self._close(out)
        self._tail.clear()
        self._finished = True
        out.append(Finish(_stop_reason(finish, self._emitted_calls > 0)))

    # -- blocks

    def _begin(self, block: Text | Reasoning | ToolCall | Refusal, kind: str, out: list[Event]) -> None:
        out.append(BlockStart(self._next, block))
        self._next += 1
        self._open = kind

    def _close(self, out: list[Event]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._next - 1))
            self._open = None
        if self._live is not None:
            self._live.done = True
            self._live = None

    def _text(self, kind: DeltaKind, value: str, out: list[Event], tail: bool = True) -> None:
        if tail and self._calls:
            # text after tool calls started would split a call's block: keep it for the end
            if self._tail and self._tail[-1][0] == kind:
                self._tail[-1][1] += value
            else:
                self._tail.append([kind, value])
            return
        if self._open != kind:
            self._close(out)
            block = Text("") if kind == "text" else Refusal("") if kind == "refusal" else Reasoning(provenance=FORMAT)
            self._begin(block, kind, out)
        out.append(Delta(self._next - 1, kind, value))

    # -- tool calls

    def _tool_fragment(self, tc: dict[str, Any], position: int, out: list[Event]) -> None:
        call_id = _str(tc.get("id"))
        kind: Literal["function", "custom"] = "custom" if tc.get("type") == "custom" else "function"
        spec = _dict(tc.get(kind))
        name = _str(spec.get("name"))
        index = tc.get("index")
        call = self._find(index if isinstance(index, int) else None, position, call_id, name, kind)
        if call.done:
            return  # a late fragment for a finished call carries nothing valid
        call.id = call.id or call_id
        if not call.name and name:
            call.name = name
        fragment = _arguments(spec, kind)
        if fragment:
            if call.name and call.id is None:
                call.id = new_id("call_")  # arguments stream after the name: no id is coming
            call.args.append(fragment)
            if call is self._live:
                out.append(Delta(call.index, "arguments", fragment))
        self._advance(call, out)

    def _find(
        self,
        index: int | None,
        position: int,
        call_id: str | None,
        name: str | None,
        kind: Literal["function", "custom"],
    ) -> _Call:
        """The call a fragment belongs to: by ``index`` (without one, by ``id``, else by the
        fragment's position in its ``tool_calls`` array), unless it starts a new call there."""
        if index is None:
            found = next((c for c in self._calls if call_id and c.id == call_id), None)
            if found is not None:
                return found
            index = position
        call = self._slots.get(index)
        if call is None or _starts_new_call(call, call_id, name):
            call = _Call(call_id, kind)
            self._calls.append(call)
            self._slots[index] = call
        return call

    def _advance(self, active: _Call, out: list[Event]) -> None:
        """Close the live call once another call is active and its arguments are complete, then
        start the first pending call if its id and name are known (one block at a time, in order)."""
        live = self._live
        if live is not None:
            if live is active or not _args_complete(live.args):
                return
            self._close(out)
        pending = next((c for c in self._calls if not c.done), None)
        if pending is not None and pending.id and pending.name:
            self._start_call(pending, out)

    def _start_call(self, call: _Call, out: list[Event]) -> None:
        self._close(out)
        call.index = self._next
        self._begin(ToolCall(call.id or "", call.name, "", call.kind), "tool", out)
        if call.args:
            out.append(Delta(call.index, "arguments", "".join(call.args)))
        self._live = call
        self._emitted_calls += 1


# --------------------------------------------------------------------------- stream: encode


class StreamEncoder:
    """Canonical events -> C ``chat.completion.chunk`` SSE bytes ("The chat completion chunk
    object"; wire-formats.md §4.1 C grammar, §4.3).

    ``encode(events) -> bytes`` returns every frame for the events (``b""`` when there is
    nothing to write). One id (``ctx.response_id`` or a fresh ``chatcmpl-…``), ``created`` and
    ``model`` (``ctx.model``) on every chunk; the first chunk is ``delta:{role, content:""}``;
    tool calls get dense ordinals 0, 1, 2… as ``tool_calls[].index``; ``Finish`` becomes the
    ``finish_reason`` chunk; ``End`` writes the usage chunk (only when ``ctx.include_usage``) and
    ``data: [DONE]``; ``ErrorEvent`` writes ``data: {"error":…}`` and ends the stream (no
    ``[DONE]``). Nothing is written after a terminal event. Never raises for valid events.
    Reasoning streams as ``reasoning_content``; when a reasoning block closes, a
    ``delta.thinking_blocks`` chunk exposes its payload (signature, redacted data, envelope) as
    ``encode_response`` does: from the first block with a payload on, every block (held earlier
    ones included) gets its entry, in order (§4.3 step 4). An ``estimated`` usage (the
    pipeline's ``UsageEstimator`` under ``ctx.estimate_usage``) is marked ``"estimated": true``
    in the usage chunk.
    """

    __slots__ = (
        "_ctx", "_id", "_created", "_started", "_finished", "_done", "_tools", "_usage", "_thinking", "_held", "_exposed",
    )  # fmt: skip

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._id = ctx.response_id or new_id("chatcmpl-")
        self._created = _now()
        self._started = False
        self._finished = False
        self._done = False
        self._tools: dict[int, int] = {}  # canonical block index -> tool call ordinal
        self._usage: Usage | None = None
        self._thinking: tuple[int, Reasoning] | None = None  # open reasoning block, text/signature so far
        self._held: list[Reasoning] = []  # closed reasoning blocks not yet given a thinking_blocks entry
        self._exposed = False  # a block with a payload was seen: every block gets an entry

    def encode(self, events: list[Event]) -> bytes:
        """Encode events in order; returns the SSE frames joined (``b""`` if none)."""
        frames: list[bytes] = []
        for ev in events:
            if self._done:
                break
            if isinstance(ev, Delta):
                if self._thinking is not None and self._thinking[0] == ev.index:
                    block = self._thinking[1]
                    if ev.kind == "signature":
                        block.signature = (block.signature or "") + ev.value
                    elif ev.kind == "reasoning":
                        block.text += ev.value
                if ev.kind == "arguments":
                    ordinal = self._tools.get(ev.index)
                    if ordinal is not None and ev.value:
                        self._chunk(frames, {"tool_calls": [{"index": ordinal, "function": {"arguments": ev.value}}]})
                elif ev.kind != "signature" and ev.value:
                    self._chunk(frames, {_DELTA_OUT[ev.kind]: ev.value})
            elif isinstance(ev, BlockStart):
                self._thinking_stop(frames)
                if isinstance(ev.block, ToolCall):
                    self._tool_start(frames, ev.index, ev.block)
                elif isinstance(ev.block, Reasoning):
                    self._thinking = (ev.index, replace(ev.block))
            elif isinstance(ev, BlockStop):
                self._thinking_stop(frames)
            elif isinstance(ev, Start):
                self._begin(frames)
                self._usage = ev.usage or self._usage
            elif isinstance(ev, UsageEvent):
                self._usage = ev.usage
            elif isinstance(ev, Finish):
                self._finish(frames, ev.stop_reason)
            elif isinstance(ev, End):
                self._finish(frames, "end_turn")
                if self._ctx.include_usage:
                    frames.append(self._frame({"choices": [], "usage": _encode_usage(self._usage)}))
                frames.append(encode_event(b"[DONE]"))
                self._done = True
            elif isinstance(ev, ErrorEvent):
                frames.append(encode_event(orjson.dumps(_error_payload(ev.error)[1])))
                self._done = True
            elif isinstance(ev, KeepAlive):
                frames.append(KEEPALIVE_COMMENT)
        return b"".join(frames)

    def _frame(self, body: dict[str, Any]) -> bytes:
        head = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._ctx.model}
        return encode_event(orjson.dumps(head | body))

    def _begin(self, frames: list[bytes]) -> None:
        if not self._started:
            self._started = True
            self._chunk(frames, {"role": "assistant", "content": ""})

    def _chunk(self, frames: list[bytes], delta: dict[str, Any], finish: str | None = None) -> None:
        if not self._started:
            self._begin(frames)
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        frames.append(self._frame({"choices": [choice]}))

    def _tool_start(self, frames: list[bytes], index: int, call: ToolCall) -> None:
        ordinal = self._tools[index] = len(self._tools)
        spec = {"name": call.name, "input" if call.kind == "custom" else "arguments": ""}
        self._chunk(frames, {"tool_calls": [{"index": ordinal, "id": call.id, "type": call.kind, call.kind: spec}]})

    def _thinking_stop(self, frames: list[bytes]) -> None:
        """The open reasoning block closed: its ``thinking_blocks`` entry, with any held before it,
        once a block with a payload has been seen (else it is held)."""
        if self._thinking is None:
            return
        block = self._thinking[1]
        self._thinking = None
        self._held.append(block)
        self._exposed = self._exposed or _has_payload(block)
        if self._exposed:
            self._chunk(frames, {"thinking_blocks": [_thinking_block(b) for b in self._held]})
            self._held.clear()

    def _finish(self, frames: list[bytes], stop: str) -> None:
        self._thinking_stop(frames)
        if not self._finished:
            self._finished = True
            self._chunk(frames, {}, _finish_reason(stop, bool(self._tools)))
