"""The canonical representation every wire format decodes into and encodes from.

Shapes follow ``wire-formats.md`` §1 ("What the canonical representation must carry"): ordered
content blocks per message, reasoning with signature / encrypted payload, tool calls with raw
argument text, a stop-reason superset and a usage superset with Anthropic semantics
(``input_tokens`` excludes cache reads and writes, wire-formats.md §3.3).

Streams are a small event grammar (``Start``, ``BlockStart``, ``Delta``, ``BlockStop``,
``UsageEvent``, ``Finish``, ``End``, ``ErrorEvent``, ``KeepAlive``). Every stream decoder
produces it and every stream encoder consumes it. Decoders guarantee the grammar:

- exactly one ``Start`` first;
- blocks are opened and closed one at a time (``BlockStart`` -> ``Delta``* -> ``BlockStop``),
  with ``index`` dense from 0 in final content order;
- ``UsageEvent`` (a full cumulative snapshot, never a partial update) may come anywhere after
  ``Start``;
- at most one ``Finish``, after the last ``BlockStop``;
- then exactly one terminal event, ``End`` (clean) or ``ErrorEvent``; nothing after it.

Everything here is pure: no I/O, plain slotted dataclasses, no pydantic (this is the per-chunk
hot path).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

# --------------------------------------------------------------------------- content blocks

CacheControl = dict[str, Any]


@dataclass(slots=True)
class Text:
    """A text block. ``cache_control`` is the Anthropic cache hint, emitted only toward A."""

    text: str
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class Image:
    """An image: base64 (``media_type`` + ``data``, no ``data:`` prefix) or a remote ``url``.

    ``detail`` is OpenAI's hint (``low`` / ``high`` / ``auto``); A has no equivalent.
    """

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class Document:
    """A document (PDF or text): base64 ``data`` + ``media_type``, a ``url``, plain ``text``,
    or a provider-scoped ``file_id`` (never sent to another provider)."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    text: str | None = None
    file_id: str | None = None
    filename: str | None = None
    title: str | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class ToolCall:
    """A tool call made by the assistant.

    ``arguments`` is the raw JSON text as C/R carry it (``""`` allowed); ``input()`` gives the
    tolerant parse A needs (wire-formats.md §2.6). ``item_id`` is an R ``fc_…`` item id, kept
    apart from the call ``id``. ``kind`` is ``"custom"`` for R freeform tools. ``namespace`` is
    the R ``namespace`` tool the call belongs to: decoded calls carry the flat tool name (as in
    ``Tool``), calls restored for an R client the namespace's inner name.
    """

    id: str
    name: str
    arguments: str = ""
    kind: Literal["function", "custom"] = "function"
    item_id: str | None = None
    cache_control: CacheControl | None = None
    namespace: str | None = None

    def input(self) -> Any:
        """Parsed arguments: ``{}`` for empty text, ``{"text": raw}`` when not valid JSON."""
        return parse_arguments(self.arguments)


@dataclass(slots=True)
class ToolResult:
    """The result of a tool call, carried in a user message. ``content`` keeps its parts in order."""

    tool_call_id: str
    content: list[Text | Image | Document] = field(default_factory=list)
    is_error: bool = False
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class Reasoning:
    """Model reasoning ("thinking").

    ``signature`` is A's thinking signature (may be the only payload, with empty ``text``);
    ``redacted`` is A ``redacted_thinking.data``; ``encrypted_content`` and ``item_id`` (``rs_…``)
    are R's. ``provenance`` names the format that issued the opaque payloads
    (``"anthropic_messages"``, ``"openai_responses"``, ``"openai_chat"``) since a signature is
    only valid at its issuer.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    encrypted_content: str | None = None
    item_id: str | None = None
    provenance: str | None = None


@dataclass(slots=True)
class Refusal:
    """An assistant refusal (C ``message.refusal``, R ``refusal`` part)."""

    text: str


Block = Text | Image | Document | ToolCall | ToolResult | Reasoning | Refusal
Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Message:
    """One conversation turn.

    ``role`` ``"system"`` appears here only for system/developer messages that are *not* leading
    (leading ones live in ``CanonicalRequest.system``). Tool results are ``ToolResult`` blocks in
    ``user`` messages (the A model); C ``tool`` messages decode to one such user message each.
    """

    role: Role
    content: list[Block] = field(default_factory=list)


# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    """A function tool. ``parameters`` is the JSON schema (root ``type: object``).

    ``strict`` is ``None`` when the source did not say (C default false, R default true).
    ``namespace`` names the R ``namespace`` tool a function came from (``name`` is then the flat,
    unique name other formats see). ``format`` is an R custom tool's input format (``{"type":
    "text"}`` or ``{"type": "grammar", "syntax", "definition"}``).
    """

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    kind: Literal["function", "custom"] = "function"
    cache_control: CacheControl | None = None
    namespace: str | None = None
    format: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolChoice:
    """``mode`` ``auto`` / ``none`` / ``required`` (A ``any``) / ``tool`` (a specific ``name``)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(slots=True)
class ReasoningConfig:
    """Reasoning controls: A ``thinking`` (``budget_tokens``, ``adaptive``), C ``reasoning_effort``,
    R ``reasoning.effort`` / ``summary``. ``enabled=False`` means explicitly disabled."""

    enabled: bool = True
    budget_tokens: int | None = None
    effort: str | None = None
    summary: str | None = None
    adaptive: bool = False


@dataclass(slots=True)
class CanonicalRequest:
    """A decoded LLM request.

    ``system`` holds the leading system/developer segments in order. ``include_usage`` says the
    client wants usage in a stream (always true for A and R clients; C only with
    ``stream_options.include_usage``). ``response_format`` is ``{"type": "json_schema", "name",
    "schema", "strict"}`` or ``{"type": "json_object"}``.

    ``extra`` holds every top-level field the model does not map, forwarded only when source and
    target format are the same (``EncodeOptions.include_extra``). ``extensions`` is the part of
    ``extra`` the client format's API does not define at all: vendor extensions a client sends
    through ``extra_body`` (OpenRouter ``provider`` / ``models``, NIM ``nvext``, …), values as
    sent. Only these may cross formats, and only where a backend quirk asks for them
    (``routing.quirks.forward_extra_fields``); the client format's own unmapped parameters
    (A ``context_management``, R ``include``, C ``seed``, …) mean something else, or nothing,
    to another vendor (wire-formats.md §2.10) and never cross.
    """

    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[Text] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    reasoning: ReasoningConfig | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def split_extra(
    body: dict[str, Any], mapped: frozenset[str], native: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(extra, extensions)`` of a request ``body`` (see ``CanonicalRequest``): ``extra`` is
    every field not in ``mapped``; ``extensions`` those of them not in ``native`` either (the
    client format's own parameters that have no canonical home)."""
    extra = {k: v for k, v in body.items() if k not in mapped}
    return extra, {k: v for k, v in extra.items() if k not in native}


@dataclass(slots=True)
class EncodeOptions:
    """Target hints for ``encode_request``, decided by routing (never by a translator).

    - ``max_tokens_field``: C only, ``"max_tokens"`` (generic compatible backends) or
      ``"max_completion_tokens"`` (OpenAI reasoning models).
    - ``stream_usage``: C only, ask for ``stream_options.include_usage`` when streaming
      (wire-formats.md §2.8; NVIDIA NIM rejects it).
    - ``default_max_tokens``: A only, used when the request has no ``max_tokens``
      (raised to ``budget_tokens + 1`` when thinking needs it).
    - ``include_extra``: forward ``CanonicalRequest.extra`` (same-format only).
    """

    max_tokens_field: str = "max_tokens"
    stream_usage: bool = True
    default_max_tokens: int = 32000
    include_extra: bool = False


# --------------------------------------------------------------------------- response

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "content_filter",
    "model_context_window_exceeded",
    "error",
]


@dataclass(slots=True)
class Usage:
    """Token usage with Anthropic semantics: ``input_tokens`` is the *uncached* input.

    C/R ``prompt_tokens`` / ``input_tokens`` = ``input_tokens + cache_read_tokens +
    cache_write_tokens`` (``prompt_total``). ``output_tokens`` includes reasoning tokens;
    ``reasoning_tokens`` is ``None`` when unknown. ``cache_write_5m`` / ``cache_write_1h`` split
    ``cache_write_tokens`` by TTL when the upstream says so. ``estimated`` marks figures
    wireshift made up because the upstream reported none (``UsageEstimator``); every encoder
    then adds ``"estimated": true`` to the client's usage object (an extra key the OpenAI and
    Anthropic SDKs and Codex tolerate), so a client can tell an estimate from a count.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int | None = None
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    estimated: bool = False

    @property
    def prompt_total(self) -> int:
        """All input tokens, cached or not (C ``prompt_tokens``, R ``input_tokens``)."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @classmethod
    def from_prompt_total(
        cls,
        prompt_total: int,
        output_tokens: int,
        cache_read: int = 0,
        cache_write: int = 0,
        reasoning_tokens: int | None = None,
    ) -> Usage:
        """Build from C/R numbers, where the prompt total includes cached tokens."""
        return cls(
            input_tokens=max(prompt_total - cache_read - cache_write, 0),
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning_tokens,
        )


@dataclass(slots=True)
class CanonicalResponse:
    """A decoded non-streaming response. ``content`` is in final order (reasoning first)."""

    id: str | None = None
    model: str | None = None
    content: list[Block] = field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int | None = None


# --------------------------------------------------------------------------- errors

#: Canonical error types use Anthropic's ``error.type`` vocabulary (wire-formats.md §6.1).
ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """Canonical error type for an HTTP status (4xx default ``invalid_request_error``)."""
    known = ERROR_TYPE_BY_STATUS.get(status)
    if known:
        return known
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


@dataclass(slots=True)
class CanonicalError:
    """An error to show a client: HTTP ``status``, canonical ``type`` (Anthropic vocabulary),
    human ``message``, OpenAI-style ``param`` / ``code`` when known (e.g. ``code`` =
    ``"context_length_exceeded"``), and ``retry_after`` (header value) when known."""

    status: int
    type: str
    message: str
    param: str | None = None
    code: str | None = None
    retry_after: str | None = None

    @classmethod
    def of(cls, status: int, message: str, **kw: Any) -> CanonicalError:
        """Error with the canonical type derived from ``status``."""
        return cls(status=status, type=error_type_for_status(status), message=message, **kw)


class TranslationError(Exception):
    """Raised by decoders and encoders for input they cannot translate.

    Carries a ``CanonicalError`` (status 400 by default) so the addon answers in the client's
    format without a crash.
    """

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.error = CanonicalError.of(status, message, param=param, code=code)


# --------------------------------------------------------------------------- stream events


@dataclass(slots=True)
class Start:
    """Stream start. ``usage`` is what is known up front (A ``message_start``), else ``None``."""

    id: str | None = None
    model: str | None = None
    usage: Usage | None = None


@dataclass(slots=True)
class BlockStart:
    """A block opens at ``index``. ``block`` is a ``Text`` (text ""), ``Reasoning`` (text "";
    ``redacted`` set for redacted thinking), ``ToolCall`` (id and name known, arguments "") or
    ``Refusal``."""

    index: int
    block: Text | Reasoning | ToolCall | Refusal


DeltaKind = Literal["text", "reasoning", "signature", "arguments", "refusal"]


@dataclass(slots=True)
class Delta:
    """An increment to the open block: ``text`` / ``reasoning`` / ``refusal`` text,
    ``arguments`` JSON fragment, or ``signature`` (A ``signature_delta``; also used to carry R
    ``encrypted_content`` with provenance on the reasoning ``BlockStart``)."""

    index: int
    kind: DeltaKind
    value: str


@dataclass(slots=True)
class BlockStop:
    """The open block at ``index`` closes."""

    index: int


@dataclass(slots=True)
class UsageEvent:
    """A full cumulative usage snapshot (later snapshots replace earlier ones)."""

    usage: Usage


@dataclass(slots=True)
class Finish:
    """Why generation stopped; comes after the last ``BlockStop``."""

    stop_reason: StopReason
    stop_sequence: str | None = None


@dataclass(slots=True)
class End:
    """Clean end of stream (terminal)."""


@dataclass(slots=True)
class ErrorEvent:
    """The stream failed (terminal). Encoders write the client format's in-stream error frame."""

    error: CanonicalError


@dataclass(slots=True)
class KeepAlive:
    """Upstream keep-alive (A ``ping``); encoders may emit their own keep-alive or nothing."""


Event = Start | BlockStart | Delta | BlockStop | UsageEvent | Finish | End | ErrorEvent | KeepAlive


@dataclass(slots=True)
class StreamContext:
    """What a stream encoder needs to know about the client side.

    ``model`` is echoed to the client (the client's own model string). ``include_usage`` is
    ``CanonicalRequest.include_usage``. ``estimated_input_tokens`` feeds A's ``message_start``
    when the upstream reports usage only at the end. ``response_id`` overrides the minted id.
    ``client`` names a known client whose quirks an encoder honours (``"codex"``,
    ``"claude-code"``; ``None`` for any other), detected from headers by the addon.
    ``estimate_usage`` says the upstream may not report usage (hosted NIM, whose
    ``stream_options`` wireshift must strip: ``routing.quirks.needs_usage_estimate``): a stream
    that ends without a ``UsageEvent``, or a response without usage, then gets an estimate
    (``UsageEstimator``, ``estimate_usage``) marked ``estimated``.
    """

    model: str
    include_usage: bool = True
    estimated_input_tokens: int = 0
    response_id: str | None = None
    client: str | None = None
    estimate_usage: bool = False


# --------------------------------------------------------------------------- helpers


def parse_arguments(raw: str) -> Any:
    """Tolerant parse of tool-call arguments (wire-formats.md §2.6): ``""`` -> ``{}``; invalid
    JSON -> ``{"text": raw}``; a JSON value that is not an object is returned as is."""
    if not raw or not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"text": raw}


def dump_arguments(value: Any) -> str:
    """Compact JSON text of tool input (stable bytes for prompt caching). Values orjson refuses
    (integers beyond 64 bits) fall back to the standard library."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A fresh random id such as ``msg_…``, ``chatcmpl-…``, ``toolu_…`` (prefix included)."""
    return prefix + secrets.token_hex(nbytes)


def shorten_tool_name(name: str, limit: int = 64) -> str:
    """Deterministic shortening of over-long tool names: first 55 chars + ``_`` + 8 hex of the
    sha256 (wire-formats.md §2.4). Names within ``limit`` are returned unchanged."""
    if len(name) <= limit:
        return name
    return name[:55] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]


#: The function schema a freeform (``custom``) tool gets in formats without custom tools.
CUSTOM_TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for the tool."}},
    "required": ["input"],
}


#: What a functionized custom tool's description gains, so the model does not follow a "do not
#: wrap the input in JSON" instruction written for the freeform form.
CUSTOM_TOOL_NOTE = "This tool takes freeform input: put it, unchanged and not JSON-encoded, in the `input` string."


def functionize_custom_tools(req: CanonicalRequest) -> list[str]:
    """Turn R ``custom`` (freeform) tools into function tools with one string ``input``
    (wire-formats.md §2.4), in ``tools`` and in history calls (raw input -> ``{"input": raw}``).
    The description gains ``CUSTOM_TOOL_NOTE`` and, for a grammar ``format``, the grammar (the
    function schema cannot carry it). Returns the tool names converted, so responses can turn
    calls back (``custom_input``)."""
    names: list[str] = []
    for tool in req.tools:
        if tool.kind == "custom":
            tool.kind = "function"
            tool.parameters = {**CUSTOM_TOOL_PARAMETERS}
            notes = [tool.description, CUSTOM_TOOL_NOTE]
            fmt = tool.format or {}
            if fmt.get("type") == "grammar" and isinstance(definition := fmt.get("definition"), str) and definition:
                syntax = fmt.get("syntax")
                notes.append(f"Input grammar ({syntax}):\n{definition}" if syntax else f"Input grammar:\n{definition}")
            tool.description = "\n\n".join(n for n in notes if n)
            names.append(tool.name)
    for msg in req.messages:
        for block in msg.content:
            if isinstance(block, ToolCall) and block.kind == "custom":
                block.kind = "function"
                block.arguments = dump_arguments({"input": block.arguments})
    return names


def custom_input(arguments: str) -> str:
    """The raw input of a call to a functionized custom tool: ``{"input": raw}`` -> ``raw``
    (other argument shapes are returned unchanged)."""
    value = parse_arguments(arguments)
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    head = '{"input":"'
    compact = arguments.lstrip().replace('{ "input"', '{"input"').replace('"input": "', '"input":"')
    if compact.startswith(head):
        # truncated (e.g. max_tokens) mid-string: unescape as much of the JSON string as parses
        partial = compact[len(head) :]
        for end in range(len(partial), max(len(partial) - 8, -1), -1):
            try:
                return str(json.loads('"' + partial[:end] + '"'))
            except ValueError:
                continue
    return arguments


#: The estimate's rule of thumb: about 4 characters a token.
CHARS_PER_TOKEN = 4

#: Rough token costs of media, which must not be counted by their base64 length.
IMAGE_TOKENS = 1600
DOCUMENT_TOKENS = 3000


def estimate_input_tokens(req: CanonicalRequest) -> int:
    """A cheap estimate of a request's input tokens: about 4 characters a token over system,
    message text, tool calls, tool results and tool definitions, plus a fixed cost per image
    (``IMAGE_TOKENS``) and document (``DOCUMENT_TOKENS``). Used for A ``message_start`` when the
    upstream reports usage only at the end, and for ``count_tokens`` answers."""
    chars = sum(len(t.text) for t in req.system)
    media = 0
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description or "") + len(dump_arguments(tool.parameters))
    blocks: list[Block] = [b for m in req.messages for b in m.content]
    while blocks:
        block = blocks.pop()
        if isinstance(block, (Text, Refusal)):
            chars += len(block.text)
        elif isinstance(block, Reasoning):
            chars += len(block.text)
        elif isinstance(block, ToolCall):
            chars += len(block.name) + len(block.arguments)
        elif isinstance(block, ToolResult):
            blocks.extend(block.content)
        elif isinstance(block, Image):
            media += IMAGE_TOKENS
        elif isinstance(block, Document):
            media += len(block.text) // 4 if block.text is not None else DOCUMENT_TOKENS
    return chars // CHARS_PER_TOKEN + media + 4 * len(req.messages)


def _tokens(chars: int) -> int:
    """Output tokens for ``chars`` characters: rounded up, so any output counts at least one."""
    return -(-chars // CHARS_PER_TOKEN)


def estimate_usage(content: list[Block], input_tokens: int) -> Usage:
    """An ``estimated`` usage for a whole response whose upstream reported none: ``input_tokens``
    (the request estimate, ``estimate_input_tokens``) and output at about 4 characters a token
    over text, refusals, reasoning (also as ``reasoning_tokens``) and tool names and arguments."""
    chars = reasoning = 0
    for block in content:
        if isinstance(block, Reasoning):
            reasoning += len(block.text)
        elif isinstance(block, (Text, Refusal)):
            chars += len(block.text)
        elif isinstance(block, ToolCall):
            chars += len(block.name) + len(block.arguments)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=_tokens(chars) + _tokens(reasoning),
        reasoning_tokens=_tokens(reasoning) if reasoning else None,
        estimated=True,
    )


class UsageEstimator:
    """Stands in for the usage an upstream stream did not report (``StreamContext.estimate_usage``).

    ``observe(events) -> events`` is called on every decoded batch, in order, before encoding; it
    counts the streamed output (text, refusal, reasoning, tool names and arguments; not
    signatures) and, when the stream ends cleanly (``End``) with no ``UsageEvent`` seen, returns
    the batch with an ``estimated`` ``UsageEvent`` inserted just before ``End``. Input is
    ``input_tokens`` (the request estimate), or what a ``Start`` carried; output and reasoning
    tokens are about 4 characters a token, rounded up. Once the upstream reports usage it stops
    counting and returns every batch unchanged. ``pipeline.StreamTranslator`` holds one only
    when the flag is set, so streams without the flag pay nothing.
    """

    __slots__ = ("_base", "_chars", "_reasoning", "_reported")

    def __init__(self, input_tokens: int) -> None:
        self._base = Usage(input_tokens=input_tokens)
        self._chars = 0
        self._reasoning = 0
        self._reported = False

    def observe(self, events: list[Event]) -> list[Event]:
        """Count ``events``; returns them, with the estimate before a final ``End`` if needed."""
        if self._reported:
            return events
        for i, ev in enumerate(events):
            if isinstance(ev, Delta):
                if ev.kind == "reasoning":
                    self._reasoning += len(ev.value)
                elif ev.kind != "signature":
                    self._chars += len(ev.value)
            elif isinstance(ev, BlockStart):
                block = ev.block
                if isinstance(block, ToolCall):
                    self._chars += len(block.name) + len(block.arguments)
                elif isinstance(block, Reasoning):
                    self._reasoning += len(block.text)
                else:
                    self._chars += len(block.text)
            elif isinstance(ev, UsageEvent):
                self._reported = True
                return events
            elif isinstance(ev, Start):
                if ev.usage is not None:
                    self._base = ev.usage
            elif isinstance(ev, End):
                self._reported = True
                return [*events[:i], UsageEvent(self.usage()), *events[i:]]
        return events

    def usage(self) -> Usage:
        """The estimate so far (``estimated`` set)."""
        output = _tokens(self._chars) + _tokens(self._reasoning)
        reasoning = _tokens(self._reasoning) if self._reasoning else None
        return replace(self._base, output_tokens=output, reasoning_tokens=reasoning, estimated=True)


def response_to_events(resp: CanonicalResponse) -> list[Event]:
    """Replay a whole response as a canonical stream (for transport fallback and tests)."""
    events: list[Event] = [Start(id=resp.id, model=resp.model, usage=None)]
    for i, block in enumerate(b for b in resp.content if isinstance(b, (Text, Reasoning, ToolCall, Refusal))):
        if isinstance(block, Text):
            events += [BlockStart(i, Text("")), Delta(i, "text", block.text), BlockStop(i)]
        elif isinstance(block, Refusal):
            events += [BlockStart(i, Refusal("")), Delta(i, "refusal", block.text), BlockStop(i)]
        elif isinstance(block, Reasoning):
            start = Reasoning(
                text="",
                redacted=block.redacted,
                encrypted_content=block.encrypted_content,
                item_id=block.item_id,
                provenance=block.provenance,
            )
            events.append(BlockStart(i, start))
            if block.text:
                events.append(Delta(i, "reasoning", block.text))
            if block.signature:
                events.append(Delta(i, "signature", block.signature))
            events.append(BlockStop(i))
        else:
            start_call = ToolCall(block.id, block.name, "", block.kind, block.item_id, namespace=block.namespace)
            events.append(BlockStart(i, start_call))
            if block.arguments:
                events.append(Delta(i, "arguments", block.arguments))
            events.append(BlockStop(i))
    if resp.usage is not None:
        events.append(UsageEvent(resp.usage))
    events.append(Finish(resp.stop_reason or "end_turn", resp.stop_sequence))
    events.append(End())
    return events


class ResponseAccumulator:
    """Folds a canonical event stream into a ``CanonicalResponse`` (stream -> non-stream).

    ``error`` is set when the stream ended with ``ErrorEvent``; ``done`` once a terminal event
    was seen.
    """

    __slots__ = ("response", "error", "done", "_open")

    def __init__(self) -> None:
        self.response = CanonicalResponse()
        self.error: CanonicalError | None = None
        self.done = False
        self._open: Text | Reasoning | ToolCall | Refusal | None = None

    def feed(self, events: list[Event]) -> None:
        """Apply events in order."""
        resp = self.response
        for ev in events:
            if isinstance(ev, Delta):
                blk = self._open
                if blk is None:
                    continue
                if ev.kind == "signature" and isinstance(blk, Reasoning):
                    blk.signature = (blk.signature or "") + ev.value
                elif ev.kind == "arguments" and isinstance(blk, ToolCall):
                    blk.arguments += ev.value
                elif isinstance(blk, (Text, Reasoning, Refusal)):
                    blk.text += ev.value
            elif isinstance(ev, BlockStart):
                b = ev.block
                if isinstance(b, Text):
                    blk2: Text | Reasoning | ToolCall | Refusal = Text(b.text)
                elif isinstance(b, Refusal):
                    blk2 = Refusal(b.text)
                elif isinstance(b, Reasoning):
                    blk2 = Reasoning(b.text, b.signature, b.redacted, b.encrypted_content, b.item_id, b.provenance)
                else:
                    blk2 = ToolCall(b.id, b.name, b.arguments, b.kind, b.item_id, namespace=b.namespace)
                self._open = blk2
                resp.content.append(blk2)
            elif isinstance(ev, BlockStop):
                self._open = None
            elif isinstance(ev, Start):
                resp.id, resp.model = ev.id, ev.model
                if ev.usage is not None:
                    resp.usage = ev.usage
            elif isinstance(ev, UsageEvent):
                resp.usage = ev.usage
            elif isinstance(ev, Finish):
                resp.stop_reason, resp.stop_sequence = ev.stop_reason, ev.stop_sequence
            elif isinstance(ev, End):
                self.done = True
            elif isinstance(ev, ErrorEvent):
                self.error = ev.error
                self.done = True


# --------------------------------------------------------------------------- signature envelope

#: Prefix of wireshift's own thinking-signature envelope (wire-formats.md §2.9 rule 2).
SIGNATURE_PREFIX = "wshift1."


def pack_signature(block: Reasoning) -> str:
    """A proxy-owned opaque reasoning payload, carried where the client format expects one.

    Anthropic SDK consumers require a signature on every thinking block, and R clients replay
    ``encrypted_content``; when the reasoning came from another format, this envelope carries its
    provenance and payloads (R ``encrypted_content`` / ``item_id``, A ``signature`` / ``redacted``)
    so the next turn can restore them (``unpack_signature``). Shape: ``"wshift1." +
    base64url(JSON)`` with keys ``p`` (provenance) and optional ``e``, ``i``, ``s``, ``r``.
    """
    payload: dict[str, str] = {"p": block.provenance or "unknown"}
    if block.encrypted_content:
        payload["e"] = block.encrypted_content
    if block.item_id:
        payload["i"] = block.item_id
    if block.signature:
        payload["s"] = block.signature
    if block.redacted:
        payload["r"] = block.redacted
    return SIGNATURE_PREFIX + base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def unpack_signature(signature: str) -> dict[str, str] | None:
    """Inverse of ``pack_signature``: ``{"p": provenance, "e"?: encrypted_content, "i"?: item_id,
    "s"?: signature, "r"?: redacted}``, or ``None`` when ``signature`` is not a wireshift
    envelope (a real provider payload)."""
    if not signature.startswith(SIGNATURE_PREFIX):
        return None
    body = signature[len(SIGNATURE_PREFIX) :]
    try:
        value = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None  # not ours, or tampered with: treat as a foreign payload
    return value
