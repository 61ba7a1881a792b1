"""Benchmark: what wireshift costs, as ratios against a plain mitmproxy measured in the same run.

Starts the bundled emulator and ``mitmdump`` reverse proxies in front of it, all on 127.0.0.1: ``plain``
(only a 3-line addon that streams SSE, as wireshift does; the baseline), ``wireshift`` (``-s
addons/wireshift.py``, defaults: the addon's upstream executor) and ``wireshift-direct`` (``--set
wireshift_executor=false``: mitmproxy forwards the re-targeted flow; skipped, saying so, if the option does not
exist). ``emulator`` (no proxy) is the floor. Workloads, over httpx (no SDK, whose overhead would dominate):

- ``request``: N sequential small non-streaming Chat Completions POSTs -> median and p90 latency.
- ``stream``: one stream of ``many-<n>`` (n tiny deltas, written as fast as the emulator can) -> total time,
  time to first byte, µs per SSE ``data:`` event received (``ev``), HTTP chunks received (``ch``).
- ``concurrent``: 32 parallel ``many-500`` streams -> wall time, µs per event.
- ``paced``: 8 parallel ``many-300`` streams paced 5 ms per event (``x-emulator-pace-ms``), as a real LLM
  streams, so every event is its own HTTP chunk on every path -> mitmdump's CPU time per event, summed over all
  rounds (2400 events a round: enough 10 ms ticks), its ratio to plain and the CPU wireshift adds per event.
  The wall time is set by the pacing and shown only as a detail.
- ``*-translated``: the same through wireshift to an Anthropic upstream (Chat client, Messages backend),
  compared with plain's same-format figure (plain cannot translate).

Each workload runs on every target, round-robin over rounds (order rotated per round) so noise hits all alike;
figures are medians over rounds (``paced`` CPU: summed over rounds). Read the ratios, never the absolute numbers:
``1.35x`` in ``vs plain`` means 35 % more time than mitmproxy's own floor on this machine, now. ``added`` is
wireshift minus plain in µs per request or per event; ``proxy CPU`` is the mitmdump process's own CPU time per
request or event (from /proc, 10 ms ticks), steadier than wall time on a loaded machine.

Chunks: mitmproxy's cost is per upstream HTTP chunk. The emulator writes one chunk per event and plain forwards
each, so its per-event cost is a per-chunk cost. A path that reads upstream itself (the executor) may batch
back-to-back events into few chunks (see ``ch``; the table flags it). In ``stream`` and ``concurrent`` that is a
fair throughput advantage (a backlog is relayed in fewer, larger writes), but not a per-event cost: a real LLM
paces its events, so each is its own chunk and no batching saving applies. ``paced`` is the per-event figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
MITMDUMP = str(Path(sys.executable).parent / "mitmdump")
ADDON = str(ROOT / "addons" / "wireshift.py")
PLAIN_ADDON = """def responseheaders(flow):
    if "text/event-stream" in flow.response.headers.get("content-type", ""):
        flow.response.stream = True
"""
CONFIG = """backends:
  - kind: custom-openai-chat-compatible
    backend_prefix: emu-chat
    base_url: {emu}/v1
    api_keys: [bench-key]
  - kind: custom-anthropic-compatible
    backend_prefix: emu-anthropic
    base_url: {emu}
    api_keys: [bench-key]
"""
HEADERS = {"content-type": "application/json", "authorization": "Bearer bench-client"}
#: (workload, kind, translated); a "-translated" workload runs on wireshift only, against plain's same-format one
WORKLOADS = [(k + s, k, bool(s)) for k in ("request", "stream", "concurrent", "paced") for s in ("", "-translated")]


class BenchError(RuntimeError):
    """A proxy or the emulator misbehaved (did not start, answered an error, cut a stream)."""


@dataclass
class Target:
    """Something to measure: the emulator itself or one proxy in front of it."""

    name: str
    url: str
    wireshift: bool = False
    pid: int | None = None  # the proxy process, for its CPU time

    def cpu(self) -> float:
        """CPU seconds (user + system) the proxy process used so far; 0 for the emulator or without /proc."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def model(self, scenario: str, translated: bool) -> str:
        """The model selector for ``scenario`` on this target (wireshift needs a backend prefix)."""
        return ("emu-anthropic:" if translated else "emu-chat:") + scenario if self.wireshift else scenario


def body(model: str, stream: bool) -> bytes:
    """A small Chat Completions request body."""
    msg = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64, "stream": stream}
    return json.dumps(msg).encode()


class SSECounter:
    """Counts SSE ``data:`` lines across arbitrary chunk boundaries, and the HTTP chunks received."""

    def __init__(self) -> None:
        self.events = self.chunks = 0
        self.ttfb = 0.0
        self._carry = b""

    def feed(self, chunk: bytes) -> None:
        """Account for one chunk of the response body (httpx yields one per HTTP/1 chunk frame)."""
        self.chunks += 1
        data = self._carry + chunk
        cut = data.rfind(b"\n") + 1
        done, self._carry = data[:cut], data[cut:]
        self.events += done.startswith(b"data:") + done.count(b"\ndata:")

    def close(self) -> int:
        """Count a final unterminated line; the number of events."""
        self.events += self._carry.startswith(b"data:")
        return self.events


def _check(r: httpx.Response, what: str) -> None:
    if r.status_code != 200:
        raise BenchError(f"{what}: HTTP {r.status_code}: {r.read()[:300]!r}")


def run_requests(t: Target, model: str, n: int) -> dict[str, Any]:
    """Latencies (s) of ``n`` sequential non-streaming requests on one keep-alive connection."""
    url, content, out = t.url + "/v1/chat/completions", body(model, False), []
    with httpx.Client(timeout=60) as c:
        _check(c.post(url, content=content, headers=HEADERS), f"{t.name} {model}")  # connect, not timed
        cpu = t.cpu()
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.post(url, content=content, headers=HEADERS)
            out.append(time.perf_counter() - t0)
            _check(r, f"{t.name} {model}")
        return {"latencies_s": out, "cpu_s": t.cpu() - cpu}


async def run_streams(t: Target, model: str, streams: int, expect: int, pace_ms: int = 0) -> dict[str, float]:
    """``streams`` parallel streaming requests, each expected to carry ``expect`` SSE events (the emulator
    pausing ``pace_ms`` between deltas, if set): wall time, median time to first byte, the events and HTTP
    chunks received in total, and the proxy's CPU time (read 50 ms after the last byte, so that the proxy's
    end-of-flow work on these streams counts too)."""
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    url = t.url + "/v1/chat/completions"
    headers = HEADERS | {"x-emulator-pace-ms": str(pace_ms)} if pace_ms else HEADERS
    async with httpx.AsyncClient(timeout=600, limits=limits) as c:

        async def one(t0: float) -> SSECounter:
            ctr = SSECounter()
            async with c.stream("POST", url, content=body(model, True), headers=headers) as r:
                if r.status_code != 200:
                    await r.aread()
                _check(r, f"{t.name} {model}")
                async for chunk in r.aiter_raw():
                    ctr.ttfb = ctr.ttfb or time.perf_counter() - t0
                    ctr.feed(chunk)
            if ctr.close() < expect:
                raise BenchError(f"{t.name} {model}: {ctr.events} SSE events, expected at least {expect}")
            return ctr

        _check(await c.post(url, content=body(t.model("text", False), False), headers=HEADERS), t.name)  # connect
        cpu, t0 = t.cpu(), time.perf_counter()
        done = await asyncio.gather(*(one(t0) for _ in range(streams)))
        total = time.perf_counter() - t0
        await asyncio.sleep(0.05)
        cpu = t.cpu() - cpu
    events, chunks = sum(x.events for x in done), sum(x.chunks for x in done)
    ttfb = statistics.median(x.ttfb for x in done)
    return {"total_s": total, "ttfb_s": ttfb, "events": events, "chunks": chunks, "cpu_s": cpu}


def spawn(cmd: list[str], log: Path, procs: list[subprocess.Popen]) -> subprocess.Popen:
    """Start ``cmd`` with its output in ``log``, remembered in ``procs`` for the cleanup. Its own session, so a
    Ctrl-C reaches only this script, which then stops it (instead of it dying under a request in flight)."""
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    procs.append(proc)
    return proc


def start_emulator(tmp: Path, procs: list[subprocess.Popen]) -> str:
    """Start scripts/emulator.py on a free port; its base URL."""
    log = tmp / "emulator.log"
    proc = spawn([sys.executable, "scripts/emulator.py", "--host", "127.0.0.1", "--port", "0"], log, procs)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if line.startswith("EMULATOR READY "):
                return line.split()[-1]
        time.sleep(0.05)
    raise BenchError(f"emulator did not start:\n{log.read_text()[-2000:]}")


def start_proxy(name: str, emu: str, tmp: Path, extra: list[str], procs: list[subprocess.Popen]) -> tuple:
    """Start one mitmdump reverse proxy to the emulator; (Popen, port, log path), not yet waited for."""
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port, log = s.getsockname()[1], tmp / f"{name}.log"
    cmd = [MITMDUMP, "-q", "--mode", f"reverse:{emu}", "--listen-host", "127.0.0.1", "--listen-port", str(port)]
    cmd += ["--set", "connection_strategy=lazy", "--set", f"confdir={tmp / ('confdir-' + name)}", *extra]
    return spawn(cmd, log, procs), port, log


def wait_ready(proc: subprocess.Popen, port: int, log: Path, wireshift: bool, timeout: float = 60) -> None:
    """Wait until the proxy accepts connections (and, for wireshift, the addon answers its status page)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"mitmdump exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/{'wireshift/status' if wireshift else 'health'}", timeout=2)
            if r.status_code == 200 or not wireshift:  # the emulator 404s /wireshift/status: addon not loaded
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    what = "(did the addon load? /wireshift/status is not 200)" if wireshift else ""
    raise BenchError(f"mitmdump on port {port} not ready in {timeout}s {what}:\n{log.read_text()[-2000:]}")


def addon_has_option(name: str) -> bool:
    """Whether addons/wireshift.py declares ``name`` (mitmdump ignores unknown ``--set`` names silently)."""
    out = subprocess.run([MITMDUMP, "-s", ADDON, "--options"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    return any(line.startswith(f"{name}:") for line in out.stdout.splitlines())


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Terminate every subprocess, then wait for each, killing any that lingers; Ctrl-C cannot cut this short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(args: argparse.Namespace, targets: list[Target]) -> list[dict[str, dict[str, Any]]]:
    """Warm every target up, then run all workloads round-robin; the raw results of each round."""
    for t in targets:
        run_requests(t, t.model("text", False), 5)
        slow = asyncio.run(run_streams(t, t.model("slow-20", False), 1, 10))  # 10 deltas, 20 ms apart
        if slow["ttfb_s"] > slow["total_s"] / 2:
            raise BenchError(f"{t.name} buffers SSE (first byte at the end): its streaming addon did not load")
        if t.wireshift:
            run_requests(t, t.model("text", True), 5)
            asyncio.run(run_streams(t, t.model("many-200", True), 1, 200))
    rounds = []
    for i in range(args.rounds):
        res: dict[str, dict[str, Any]] = {w: {} for w, _, _ in WORKLOADS}
        for workload, kind, translated in WORKLOADS:
            order = targets[i % len(targets) :] + targets[: i % len(targets)]
            for t in order:
                if translated and not t.wireshift:
                    continue
                if kind == "request":
                    res[workload][t.name] = run_requests(t, t.model("text", translated), args.requests)
                    continue
                streams, n, pace = {
                    "stream": (1, args.chunks, 0),
                    "concurrent": (args.streams, args.stream_chunks, 0),
                    "paced": (args.paced_streams, args.paced_events, args.pace_ms),
                }[kind]
                model = t.model(f"many-{n}", translated)
                res[workload][t.name] = asyncio.run(run_streams(t, model, streams, n, pace))
        rounds.append(res)
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return rounds


def summarize(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per workload and target, the median over rounds of each figure (CPU per request or per event); for
    ``paced``, CPU per event is summed over the rounds instead (``tick_us``: one clock tick per event)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    med = statistics.median
    for workload, kind, _ in WORKLOADS:
        for name in rounds[0][workload]:
            per = [r[workload][name] for r in rounds]
            if kind == "request":
                fig = {"time_ms": med(med(x["latencies_s"]) for x in per) * 1e3}
                fig["p90_ms"] = med(statistics.quantiles(x["latencies_s"], n=10)[-1] for x in per) * 1e3
                fig["cpu_us"] = med(x["cpu_s"] / len(x["latencies_s"]) for x in per) * 1e6
            else:
                fig = {k: med(x[k] for x in per) for k in per[0] if k != "cpu_s"}
                fig["time_ms"] = fig.pop("total_s") * 1e3
                fig["us_per_event"] = med(x["total_s"] / x["events"] for x in per) * 1e6
                fig["cpu_us"] = med(x["cpu_s"] / x["events"] for x in per) * 1e6
            if kind == "paced":
                events = sum(x["events"] for x in per)
                fig["cpu_us"] = sum(x["cpu_s"] for x in per) / events * 1e6
                fig["tick_us"] = 1e6 / os.sysconf("SC_CLK_TCK") / events
                per_round = [x["cpu_s"] / x["events"] * 1e6 for x in per]
                fig["cpu_lo_us"], fig["cpu_hi_us"] = min(per_round), max(per_round)
            out.setdefault(workload, {})[name] = fig
    return out


def report(summary: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace) -> None:
    """Print the table: time, detail, ratio to plain, what wireshift adds, and the proxy's CPU per unit; then
    the paced table, whose headline is the proxy's CPU per event."""
    row = "{:22} {:16} {:>9} {:>36} {:>8} {:>13} {:>13} {:>8}".format
    print("\n" + row("workload", "proxy", "median", "detail", "vs plain", "added", "proxy CPU", "vs plain"))
    notes = []
    for workload, kind, _ in [w for w in WORKLOADS if w[1] != "paced"]:
        base = summary[workload.removesuffix("-translated")].get("plain")
        for name, f in summary.get(workload, {}).items():
            unit = "req" if kind == "request" else "ev"
            if kind == "request":
                shown, detail = f"{f['time_ms']:.2f} ms", f"p90 {f['p90_ms']:.2f} ms"
                added = (f["time_ms"] - base["time_ms"]) * 1e3 if base else 0.0
            else:
                shown, detail = f"{f['time_ms']:.0f} ms", f"{f['us_per_event']:.1f} µs/ev, {f['chunks']:.0f} ch"
                if kind == "stream":
                    detail = f"ttfb {f['ttfb_s'] * 1e3:.1f} ms, {detail}"
                added = (f["time_ms"] - base["time_ms"]) * 1e3 / f["events"] if base else 0.0
                if f["chunks"] < f["events"] / 2:
                    notes.append(f"{workload} {name} ({f['events']:.0f} ev in {f['chunks']:.0f} ch)")
            ratio = f"{f['time_ms'] / base['time_ms']:.2f}x" if base else ""
            digits = 0 if kind == "request" else 1
            added_s = f"{added:+.{digits}f} µs/{unit}" if base and name not in ("plain", "emulator") else ""
            cpu = f"{f['cpu_us']:.{digits}f} µs/{unit}" if f["cpu_us"] else ""
            cpu_ratio = f"{f['cpu_us'] / base['cpu_us']:.2f}x" if cpu and base and base["cpu_us"] else ""
            print(row(workload, name, shown, detail, ratio, added_s, cpu, cpu_ratio))
    print("\nvs plain: relative to plain mitmdump in this run; added: wireshift minus plain; proxy CPU: mitmdump's")
    print("own CPU time per request or SSE event. Translated rows compare with plain's same-format row.")
    print("ev = SSE data events the client got, ch = HTTP chunks it got (plain forwards one per upstream chunk).")
    print("stream and concurrent measure throughput of back-to-back writes, where batching them is a fair gain.")
    if notes:
        text = f"Coalesced: {'; '.join(notes)}. These paths batched the emulator's back-to-back writes into few chunks,"
        text += " so their per-event figures are amortized over batches and flatter them. The honest per-event cost"
        print(textwrap.fill(text + " (a real, paced LLM stream: one event per chunk) is the paced table below.", 110))
    report_paced(summary, args)


def report_paced(summary: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace) -> None:
    """The paced rows: mitmdump's CPU per event (summed over the rounds), its ratio to plain, what wireshift
    adds; wall time and chunks as detail."""
    n, deltas = args.paced_streams, args.rounds * args.paced_streams * args.paced_events
    text = f"Paced: {n} parallel streams of many-{args.paced_events}, {args.pace_ms} ms between deltas, {args.rounds}"
    text += f" rounds ({deltas} deltas per proxy): every event is its own chunk, as from a real LLM. Headline:"
    text += " mitmdump's CPU per event over all rounds; wall time is set by the pacing."
    print("\n" + textwrap.fill(text, 110))
    row = "{:22} {:16} {:>10} {:>8} {:>16}  {}".format
    print("\n" + row("workload", "proxy", "CPU/event", "vs plain", "added CPU", "detail"))
    notes = []
    for workload in ("paced", "paced-translated"):
        base = summary["paced"].get("plain")
        for name, f in summary.get(workload, {}).items():
            detail = f"wall {f['time_ms'] / 1e3:.2f} s, {f['events']:.0f} ev / {f['chunks']:.0f} ch"
            if f["chunks"] < f["events"] * 0.9:
                notes.append(f"{workload} {name}")
            if name == "emulator":
                print(row(workload, name, "no proxy", "", "", detail))
                continue
            detail += f", rounds {f['cpu_lo_us']:.1f}-{f['cpu_hi_us']:.1f}, tick {f['tick_us']:.1f} µs"
            ratio = f"{f['cpu_us'] / base['cpu_us']:.2f}x" if base and base["cpu_us"] else ""
            added = f"{f['cpu_us'] - base['cpu_us']:+.1f} µs/ev" if base and name != "plain" else ""
            print(row(workload, name, f"{f['cpu_us']:.1f} µs", ratio, added, detail))
    print("\nadded CPU: wireshift minus plain, µs of mitmdump CPU per event (translated: vs plain's Chat row).")
    print("rounds: lowest-highest per-round figure; tick: one 10 ms CPU tick per event, the resolution.")
    if notes:
        print(f"WARNING: far fewer chunks than events in {', '.join(notes)}: the pacing did not take effect there.")


def start_targets(tmp: Path, procs: list[subprocess.Popen]) -> tuple[list[Target], list[str]]:
    """Start the emulator and the proxies; the targets that came up and the configurations skipped."""
    emu = start_emulator(tmp, procs)
    (tmp / "config.yaml").write_text(CONFIG.format(emu=emu))
    (tmp / "plain_stream.py").write_text(PLAIN_ADDON)
    ws = ["-s", ADDON, "--set", f"wireshift_config={tmp / 'config.yaml'}"]
    specs = [("plain", ["-s", str(tmp / "plain_stream.py")]), ("wireshift", ws)]
    skipped = []
    if addon_has_option("wireshift_executor"):
        specs.append(("wireshift-direct", [*ws, "--set", "wireshift_executor=false"]))
    else:
        skipped.append("wireshift-direct")
        print("wireshift-direct skipped: addons/wireshift.py has no 'wireshift_executor' option; 'wireshift'")
        print("  below is the addon's only path (mitmproxy forwards the re-targeted flow itself)")
    started = [(name, start_proxy(name, emu, tmp, extra, procs)) for name, extra in specs]
    targets = [Target("emulator", emu)]
    for name, (proc, port, log) in started:
        try:
            wait_ready(proc, port, log, name != "plain")
            targets.append(Target(name, f"http://127.0.0.1:{port}", name != "plain", proc.pid))
        except BenchError as exc:
            if name != "wireshift-direct":
                raise
            skipped.append(name)
            print(f"wireshift-direct skipped: mitmdump refused --set wireshift_executor=false: {str(exc)[:500]}")
    return targets, skipped


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, help="interleaved rounds, median taken (default 5; quick 2)")
    p.add_argument("--requests", type=int, help="sequential requests per round (default 300; quick 30)")
    p.add_argument("--chunks", type=int, help="SSE deltas in the single stream (default 20000; quick 2000)")
    p.add_argument("--streams", type=int, help="parallel streams in 'concurrent' (default 32; quick 8)")
    p.add_argument("--paced-streams", type=int, help="parallel streams in 'paced' (default 8; quick 4)")
    p.add_argument("--paced-events", type=int, help="SSE deltas per paced stream (default 300; quick 100)")
    p.add_argument("--pace-ms", type=int, help="ms between the deltas of a paced stream (default 5)")
    p.add_argument("--quick", action="store_true", help="small numbers: a smoke run of about 20 s")
    p.add_argument("--json", type=Path, metavar="PATH", help="write all raw numbers here")
    args = p.parse_args(argv)
    defaults = (2, 30, 2000, 8, 200, 4, 100, 5) if args.quick else (5, 300, 20000, 32, 500, 8, 300, 5)
    keys = ("rounds", "requests", "chunks", "streams", "stream_chunks", "paced_streams", "paced_events", "pace_ms")
    for key, value in zip(keys, defaults, strict=True):
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(143))  # so the finally below runs
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="wireshift-bench-") as tmpdir:
        try:
            targets, skipped = start_targets(Path(tmpdir), procs)
            work = f"{args.requests} requests, 1 x many-{args.chunks}, {args.streams} x many-{args.stream_chunks}"
            work += f", {args.paced_streams} x many-{args.paced_events} paced {args.pace_ms} ms"
            print(f"{args.rounds} rounds of {work}; targets: {', '.join(t.name for t in targets)}", flush=True)
            rounds = measure(args, targets)
            report(summary := summarize(rounds), args)
            if args.json:
                raw = {"args": vars(args), "skipped": skipped, "targets": {t.name: t.url for t in targets}}
                args.json.write_text(json.dumps(raw | {"summary": summary, "rounds": rounds}, indent=1, default=str))
                print(f"raw numbers: {args.json}")
            return 0
        except (BenchError, httpx.HTTPError) as exc:
            print(f"bench failed: {exc!r}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
