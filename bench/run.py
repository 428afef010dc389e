"""`make bench`: the API's main paths against a bare FastAPI baseline, in one interleaved run.

    .venv/bin/python -m bench.run [--quick] [--rounds N] [--seconds S] [--output DIR]

It creates a PostgreSQL database of its own (`BENCH_DATABASE_URL`'s server, dropped at the
end) seeded by `bench.seed`, uses Redis (`BENCH_REDIS_URL`) under a key prefix of its own,
and serves two apps with the same Uvicorn flags (one worker, uvloop, httptools): the API
the production way (`python -m app`, ENVIRONMENT=production: PostgreSQL, Redis rate
limiting with limits too high to trigger, metrics on, JSON logs at INFO) and the bare
FastAPI "hello world" of `bench.hello`. Each round runs every scenario and the baseline once,
in a new random order, with wrk; a scenario's figure is its ratio to the baseline of the
same round, so a machine that is slower or busier for a while moves both. Where the machine
has two cores and `taskset` works, the servers run on core 0 and wrk, PostgreSQL and Redis
on core 1 (their affinity is put back afterwards).

The report goes to DIR/REPORT.md and DIR/report.json (default: `bench/`, or `var/bench/`
for `--quick`, one short round that only shows the harness works).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from redis import Redis

from bench import seed
from tests.support import unused_port

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = ROOT / "bench" / "wrk"
PYTHON = sys.executable
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
CONNECTIONS = 16  # per scenario; the database pool (10 + 10 overflow) serves them all
FLOOD_CONNECTIONS = 64
SIGNED_IN_USERS = 32  # whose access tokens the authenticated scenarios take turns with
HIGH_LIMIT = "1000000/minute"
SERVER_CORE, LOAD_CORE = 0, 1
SERVER_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    script: str
    path: str = "/api/v1/posts"
    connections: int = CONNECTIONS
    # What the wrk script is given: nothing, the signed-in users' access tokens, or
    # refresh tokens to rotate.
    credentials: str | None = None
    target: float | None = None  # the ratio to the baseline this scenario must reach


BASELINE = Scenario("baseline", 'Bare FastAPI "hello world"', "get.lua", path="/")
SCENARIOS = (
    # The floor of the stack: every middleware, the metrics and the access log, and no
    # database, rate limit or dependency.
    Scenario(
        "health",
        "`/health` (middleware, metrics, log line; nothing else)",
        "get.lua",
        path="/health",
    ),
    Scenario("anonymous_list", "List, anonymous (20 posts, vote counts)", "get.lua", target=0.14),
    Scenario(
        "authenticated_list",
        "List, signed in (20 posts, counts, `voted`)",
        "auth_list.lua",
        credentials="access",
        target=0.12,
    ),
    Scenario("one_post", "One post, anonymous", "one_post.lua", target=0.18),
    Scenario("search", "Search, anonymous (one word, 10,000 posts)", "search.lua"),
    Scenario(
        "create_post",
        "Create a post (row + outbox event)",
        "create_post.lua",
        credentials="access",
        target=0.06,
    ),
    Scenario("vote", "Vote on a post", "vote.lua", credentials="access", target=0.08),
    Scenario(
        "refresh", "Refresh-token rotation", "refresh.lua", credentials="refresh", target=0.06
    ),
)
LOGIN_FLOOD = "login_flood"
OUTBOX = "outbox"
HEALTH_P99_TARGET_MS = 50.0
PROBE_INTERVAL_SECONDS = 0.02  # /health 50 times a second during the login flood
OUTBOX_TARGET = 1_000.0
RSS_TARGET_MIB = 150.0
IDLE_THREADS_EXIT_SECONDS = 15


@dataclass(slots=True)
class Run:
    """One wrk run's figures."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    @classmethod
    def parse(cls, output: str) -> Run:
        figures = json.loads(output.strip().splitlines()[-1])
        errors = sum(
            figures[key]
            for key in ("connect_errors", "read_errors", "write_errors", "timeouts", "bad_status")
        )
        return cls(
            requests_per_second=figures["requests"] / (figures["duration_us"] / 1e6),
            p50_ms=figures["p50_us"] / 1000,
            p99_ms=figures["p99_us"] / 1000,
            errors=errors,
        )


@dataclass(slots=True)
class Round:
    order: list[str]
    runs: dict[str, Run] = field(default_factory=dict)
    login_flood: dict[str, float] = field(default_factory=dict)
    outbox_events_per_second: float | None = None

    def ratio(self, name: str) -> float:
        return self.runs[name].requests_per_second / self.runs[BASELINE.name].requests_per_second


@dataclass(slots=True)
class Options:
    rounds: int
    seconds: int
    warmup_seconds: int
    outbox_events: int
    output: Path
    postgres: str
    redis: str
    quick: bool
    only: frozenset[str] | None  # these measures (and the baseline) only
    profile: bool  # after the rounds, where the API's time goes in each scenario (py-spy)


# --- Pinning -------------------------------------------------------------------------


def pinning_works() -> bool:
    return (
        shutil.which("taskset") is not None
        and len(os.sched_getaffinity(0)) >= 2
        and {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0)
    )


def pinned(core: int, command: list[str], enabled: bool) -> list[str]:
    return ["taskset", "-c", str(core), *command] if enabled else command


def _service_threads() -> list[int]:
    """The thread ids of the PostgreSQL and Redis processes on this machine."""
    found = subprocess.run(
        ["pgrep", "-d", " ", "-f", "^(postgres|/usr/lib/postgresql/.*/postgres|redis-server)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    threads = []
    for pid in found:
        with contextlib.suppress(FileNotFoundError):
            threads += [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    return threads


@contextlib.contextmanager
def services_on_load_core(enabled: bool) -> Iterator[bool]:
    """PostgreSQL and Redis on the load core for the run; their affinity is restored after.

    New PostgreSQL backends are forked from the postmaster, so they inherit its affinity.
    Yields whether they could be moved (it takes the right to change their affinity).
    """
    if not enabled:
        yield False
        return
    saved: dict[int, set[int]] = {}
    try:
        for tid in _service_threads():
            with contextlib.suppress(ProcessLookupError):
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {LOAD_CORE})
        moved = bool(saved)
    except PermissionError:
        moved = False
    try:
        yield moved
    finally:
        for tid, cores in saved.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(tid, cores)


# --- Servers -------------------------------------------------------------------------


@dataclass(slots=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS for the server")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def serving(
    name: str, command: list[str], env: dict[str, str], ready_path: str, workdir: Path
) -> Iterator[Server]:
    port = unused_port()
    log = workdir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,  # away from the repository's .env
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        server.stop()


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not start:\n{server.log.read_text()[-4000:]}")


def api_environment(database_url: str, redis_url: str, key_prefix: str) -> dict[str, str]:
    limits = ("LOGIN", "LOGIN_ACCOUNT", "REGISTER", "REFRESH", "OAUTH", "READ", "WRITE")
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TRUSTED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RATE_LIMIT_KEY_PREFIX": key_prefix,
        **{f"RATE_LIMIT_{name}": HIGH_LIMIT for name in limits},
        "METRICS_ENABLED": "true",
        "LOG_LEVEL": "INFO",
        "OUTBOX_QUEUE_NAME": key_prefix,
    }


# --- Sign-ins ------------------------------------------------------------------------


async def sign_in(api: str, user_ids: list[int]) -> list[dict[str, str]]:
    """Token pairs of these seeded users (a new session each)."""
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:

        async def one(user_id: int) -> dict[str, str]:
            response = await client.post(
                "/api/v1/login",
                data={"username": seed.email(user_id), "password": seed.PASSWORD},
            )
            response.raise_for_status()
            return dict(response.json())

        return list(await asyncio.gather(*(one(user_id) for user_id in user_ids)))


# --- wrk -----------------------------------------------------------------------------


def wrk(
    url: str,
    script: str,
    *,
    seconds: int,
    connections: int,
    args: list[str],
    pin: bool,
    workdir: Path,
) -> subprocess.Popen[str]:
    """Start one wrk run; its last output line is the JSON of `common.lua`'s `done`."""
    combined = workdir / f"{script}.combined.lua"
    combined.write_text(
        (WRK_SCRIPTS / "common.lua").read_text() + "\n" + (WRK_SCRIPTS / script).read_text()
    )
    command = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--script",
        str(combined),
        url,
        "--",
        *args,
    ]
    return subprocess.Popen(
        pinned(LOAD_CORE, command, pin), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def probe(url: str, seconds: int) -> tuple[list[float], int]:
    """GET `url` every PROBE_INTERVAL_SECONDS for `seconds`, as a load balancer's health
    check would (a closed loop would keep the event loop busy by itself): the latencies in
    milliseconds of the answers, and how many failed or were not 200."""
    latencies: list[float] = []
    failures = 0
    with httpx.Client(timeout=10) as client:
        deadline = time.monotonic() + seconds
        while (started := time.monotonic()) < deadline:
            try:
                ok = client.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.monotonic() - started) * 1000)
            failures += not ok
            time.sleep(max(0.0, started + PROBE_INTERVAL_SECONDS - time.monotonic()))
    return latencies, failures


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


# Where a sampled frame's file lies, by the first of these its path contains.
PACKAGES = (
    *("app", "fastapi", "starlette", "pydantic", "sqlalchemy", "psycopg", "redis", "limits"),
    *("structlog", "logging", "prometheus_fastapi_instrumentator", "prometheus_client"),
    *("asgi_correlation_id", "uvicorn", "anyio", "jwt", "json", "asyncio"),
)


def profile_shares(stacks: Path) -> dict[str, float]:
    """The share of the event loop thread's samples whose innermost Python frame is in each
    package; `event loop` is time in uvloop and httptools themselves (no Python frame)."""
    counts: dict[str, int] = {}
    for line in stacks.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        if not any("asyncio/runners.py" in frame for frame in frames):
            continue  # another thread: argon2's, the thread pool's
        innermost = frames[-1]
        package = (
            "event loop"
            if "asyncio/runners.py" in innermost
            else next(
                (p for p in PACKAGES if f"/{p}/" in innermost or f"({p}/" in innermost), "other"
            )
        )
        counts[package] = counts.get(package, 0) + int(samples)
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return {package: count / total for package, count in ranked}


def finished(process: subprocess.Popen[str]) -> Run:
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{output}")
    return Run.parse(output)


# --- The run -------------------------------------------------------------------------


class Bench:
    def __init__(self, options: Options, api: Server, baseline: Server, workdir: Path) -> None:
        self.options = options
        self.api = api
        self.baseline = baseline
        self.workdir = workdir
        self.pin = pinning_works()
        self.rng = random.Random()
        self.static_args = [
            f"posts={seed.POSTS}",
            f"drafts={seed.DRAFT_EVERY}",
            *(f"word={word}" for word in seed.WORDS),
        ]

    def _credentials(self, kind: str | None, connections: int) -> list[str]:
        if kind is None:
            return []
        # Refresh tokens: two per connection, since wrk builds a few requests ahead as its
        # connections open (with one each, the pool ran dry and sent spent tokens).
        count = SIGNED_IN_USERS if kind == "access" else 2 * connections
        users = self.rng.sample(range(1, seed.USERS + 1), count)
        pairs = asyncio.run(sign_in(self.api.url, users))
        key = "access_token" if kind == "access" else "refresh_token"
        return [f"token={pair[key]}" for pair in pairs]

    def scenario(self, scenario: Scenario, seconds: int) -> Run:
        server = self.baseline if scenario is BASELINE else self.api
        args = self.static_args + self._credentials(scenario.credentials, scenario.connections)
        return finished(
            wrk(
                server.url + scenario.path,
                scenario.script,
                seconds=seconds,
                connections=scenario.connections,
                args=args,
                pin=self.pin,
                workdir=self.workdir,
            )
        )

    def login_flood(self, seconds: int) -> dict[str, float]:
        """64 connections logging in, while a probe asks `/health` what that costs it."""
        users = [f"user={quote(seed.email(n))}" for n in range(1, seed.USERS + 1)]
        flood = wrk(
            self.api.url,
            "login.lua",
            seconds=seconds,
            connections=FLOOD_CONNECTIONS,
            args=[*users, f"password={seed.PASSWORD}"],
            pin=self.pin,
            workdir=self.workdir,
        )
        latencies, failures = probe(self.api.url + "/health", seconds)
        logins = finished(flood)
        return {
            "logins_per_second": logins.requests_per_second,
            "login_p99_ms": logins.p99_ms,
            "login_errors": logins.errors,
            "health_p50_ms": _percentile(latencies, 50),
            "health_p99_ms": _percentile(latencies, 99),
            "health_errors": failures,
        }

    def outbox(self) -> float:
        command = [
            PYTHON,
            "-m",
            "bench.outbox_throughput",
            str(self.options.outbox_events),
            self.options.postgres,
            self.options.redis,
            "--json",
        ]
        done = subprocess.run(
            pinned(SERVER_CORE, command, self.pin),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the outbox benchmark failed:\n{done.stdout}\n{done.stderr}")
        return float(json.loads(done.stdout.strip().splitlines()[-1])["events_per_second"])

    def measures(self) -> list[str]:
        names = [*(s.name for s in SCENARIOS), LOGIN_FLOOD, OUTBOX]
        only = self.options.only
        return [BASELINE.name, *(name for name in names if only is None or name in only)]

    def profiles(self) -> dict[str, dict[str, float]]:
        """Each scenario once more with py-spy sampling the API: the share of its samples
        spent in each package (own time), and the raw stacks in the output folder. The
        sampling slows the server, so these runs are not part of the figures."""
        shares = {}
        for scenario in SCENARIOS:
            if scenario.name not in self.measures():
                continue
            stacks = self.options.output / f"profile-{scenario.name}.txt"
            sampler = subprocess.Popen(
                [
                    *(PY_SPY, "record", "--pid", str(self.api.process.pid), "--rate", "100"),
                    *("--duration", str(self.options.seconds), "--format", "raw"),
                    *("--output", str(stacks)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.scenario(scenario, self.options.seconds)
            sampler.wait(timeout=60)
            shares[scenario.name] = profile_shares(stacks)
        return shares

    def warm_up(self) -> None:
        for scenario in (BASELINE, *SCENARIOS):
            if scenario.name in self.measures():
                self.scenario(scenario, self.options.warmup_seconds)

    def round(self, number: int) -> Round:
        names = self.measures()
        self.rng.shuffle(names)
        result = Round(order=names)
        by_name = {s.name: s for s in (BASELINE, *SCENARIOS)}
        for name in names:
            print(f"round {number}: {name}", flush=True)
            if name == LOGIN_FLOOD:
                result.login_flood = self.login_flood(self.options.seconds)
            elif name == OUTBOX:
                result.outbox_events_per_second = self.outbox()
            else:
                result.runs[name] = self.scenario(by_name[name], self.options.seconds)
        return result


def main(argv: list[str] | None = None) -> None:
    options = _options(argv)
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    key_prefix = f"bench-{uuid.uuid4().hex[:12]}"
    started = datetime.now(UTC)
    options.output.mkdir(parents=True, exist_ok=True)
    try:
        with seed.own_database(options.postgres) as database_url:
            print("seeding", flush=True)
            seed.seed(database_url, rng=random.Random(20261127))
            pin = pinning_works()
            if pin:
                os.sched_setaffinity(0, {LOAD_CORE})  # this process and what it starts
            with (
                services_on_load_core(pin) as services_pinned,
                serving(
                    "api",
                    pinned(SERVER_CORE, [PYTHON, "-m", "app"], pin),
                    api_environment(database_url, options.redis, key_prefix),
                    "/ready",
                    workdir,
                ) as api,
                serving(
                    "baseline",
                    pinned(
                        SERVER_CORE,
                        [PYTHON, "-m", "uvicorn", "bench.hello:app", *SERVER_FLAGS],
                        pin,
                    ),
                    {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
                    "/",
                    workdir,
                ) as baseline,
            ):
                bench = Bench(options, api, baseline, workdir)
                print("warming up", flush=True)
                bench.warm_up()
                rounds = [bench.round(n + 1) for n in range(options.rounds)]
                rss = {"after_run": api.rss_mib()}
                # The thread pool's idle threads (argon2 ran in them) exit after 10 s.
                time.sleep(IDLE_THREADS_EXIT_SECONDS)
                rss["settled"] = api.rss_mib()
                profiles = bench.profiles() if options.profile else {}
                server_versions = _server_versions(database_url, options.redis)
            report = _report(options, rounds, rss, started, pin, services_pinned, server_versions)
            report["profiles"] = profiles
    finally:
        _delete_keys(options.redis, key_prefix)
        shutil.rmtree(workdir, ignore_errors=True)
    (options.output / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (options.output / "REPORT.md").write_text(_markdown(report))
    print(_markdown(report))


def _options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=int, help="per scenario and round")
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--only", help="comma-separated measures to run (with the baseline), for profiling"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, sample the API with py-spy during each scenario once more",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return Options(
        rounds=args.rounds or (1 if quick else 3),
        seconds=args.seconds or (2 if quick else 10),
        warmup_seconds=1 if quick else 2,
        outbox_events=1_000 if quick else 10_000,
        output=args.output or ROOT / ("var/bench" if quick else "bench"),
        postgres=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        redis=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        quick=quick,
        only=frozenset(args.only.split(",")) if args.only else None,
        profile=bool(args.profile),
    )


def _delete_keys(redis_url: str, prefix: str) -> None:
    with Redis.from_url(redis_url) as redis:
        keys = list(redis.scan_iter(f"*{prefix}*"))
        if keys:
            redis.delete(*keys)


def _server_versions(database_url: str, redis_url: str) -> dict[str, str]:
    with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    with Redis.from_url(redis_url) as redis:
        info: dict[str, Any] = redis.info("server")
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "PostgreSQL": str(row[0]) if row else "?",
        "Redis": str(info.get("redis_version", "?")),
        "wrk": (wrk_version.stdout or wrk_version.stderr).split()[1],
    }


# --- The report ----------------------------------------------------------------------


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
    }


def _report(
    options: Options,
    rounds: list[Round],
    rss_mib: dict[str, float],
    started: datetime,
    pin: bool,
    services_pinned: bool,
    server_versions: dict[str, str],
) -> dict[str, Any]:
    packages = ("fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy", "psycopg", "redis")
    scenarios: dict[str, Any] = {}
    for scenario in (BASELINE, *SCENARIOS):
        if scenario.name not in rounds[0].runs:  # left out by --only
            continue
        runs = [r.runs[scenario.name] for r in rounds]
        entry: dict[str, Any] = {
            "title": scenario.title,
            "requests_per_second": _spread([run.requests_per_second for run in runs]),
            "p50_ms": _spread([run.p50_ms for run in runs]),
            "p99_ms": _spread([run.p99_ms for run in runs]),
            "errors": sum(run.errors for run in runs),
        }
        if scenario is not BASELINE:
            entry["ratio"] = _spread([r.ratio(scenario.name) for r in rounds])
            entry["target"] = scenario.target
            entry["met"] = scenario.target is None or entry["ratio"]["median"] >= scenario.target
        scenarios[scenario.name] = entry
    flood: dict[str, Any] | None = None
    if rounds[0].login_flood:
        flood = {
            key: _spread([r.login_flood[key] for r in rounds]) for key in rounds[0].login_flood
        }
        flood["met"] = (
            flood["login_errors"]["max"] == 0
            and flood["health_errors"]["max"] == 0
            and flood["health_p99_ms"]["median"] < HEALTH_P99_TARGET_MS
        )
    outbox: dict[str, Any] | None = None
    if rounds[0].outbox_events_per_second is not None:
        rates = _spread([r.outbox_events_per_second or 0.0 for r in rounds])
        outbox = {"events_per_second": rates, "met": rates["median"] >= OUTBOX_TARGET}
    return {
        "date": started.isoformat(timespec="seconds"),
        "quick": options.quick,
        "machine": _machine(),
        "versions": {
            "Python": platform.python_version(),
            **{name: metadata.version(name) for name in packages},
            **server_versions,
        },
        "method": {
            "rounds": options.rounds,
            "seconds_per_run": options.seconds,
            "connections": CONNECTIONS,
            "login_flood_connections": FLOOD_CONNECTIONS,
            "outbox_events": options.outbox_events,
            "servers_pinned_to_core": SERVER_CORE if pin else None,
            "load_pinned_to_core": LOAD_CORE if pin else None,
            "postgres_and_redis_pinned": services_pinned,
        },
        "scenarios": scenarios,
        "login_flood": flood,
        "outbox": outbox,
        "api_rss_mib": rss_mib | {"met": rss_mib["settled"] < RSS_TARGET_MIB},
        "rounds": [asdict(r) for r in rounds],
    }


def _mark(met: bool) -> str:
    return "yes" if met else "**no**"


def _scenario_row(entry: dict[str, Any]) -> str:
    cells = [
        entry["title"],
        f"{entry['requests_per_second']['median']:,.0f}",
        f"{entry['p50_ms']['median']:.1f}",
        f"{entry['p99_ms']['median']:.1f}",
    ]
    ratio = entry.get("ratio")
    if ratio is None:  # the baseline
        cells += ["1", "-", "-", "-"]
    else:
        target = entry["target"]
        cells += [
            f"{ratio['median']:.3f}",
            f"{ratio['min']:.3f}-{ratio['max']:.3f}",
            f">= {target}" if target else "-",
            _mark(entry["met"]) if target else "-",
        ]
    if entry["errors"]:
        cells[0] += f" ({entry['errors']} errors)"
    return "| " + " | ".join(cells) + " |"


def _markdown(report: dict[str, Any]) -> str:
    method, machine, versions = report["method"], report["machine"], report["versions"]
    pinning = (
        f"servers on core {method['servers_pinned_to_core']}, wrk on core "
        f"{method['load_pinned_to_core']}"
        + (", PostgreSQL and Redis too" if method["postgres_and_redis_pinned"] else "")
        if method["servers_pinned_to_core"] is not None
        else "no pinning (taskset or a second core missing)"
    )
    lines = [
        "# Benchmark report"
        + (" (quick run: one short round, not a measurement)" if report["quick"] else ""),
        "",
        f"Written by `make bench{' QUICK=1' if report['quick'] else ''}` on {report['date']}. "
        "Ratios are req/s of the scenario divided by req/s of the bare FastAPI baseline in "
        "the same round; the table gives their median over the rounds and the lowest and "
        "highest round.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        f"- Method: {method['rounds']} rounds in shuffled order, {method['seconds_per_run']} s "
        f"per run, wrk with 1 thread and {method['connections']} connections; {pinning}",
        "",
        "| Scenario | req/s | p50 ms | p99 ms | ratio (median) | ratio (min-max) | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_scenario_row(entry) for entry in report["scenarios"].values()]
    flood, outbox, rss = report["login_flood"], report["outbox"], report["api_rss_mib"]
    lines += ["", "| Measure | median | min-max | target | met |", "|---|---:|---:|---|---|"]
    if flood:
        lines += [
            f"| Login flood ({method['login_flood_connections']} connections): logins/s | "
            f"{flood['logins_per_second']['median']:.1f} | {flood['logins_per_second']['min']:.1f}-"
            f"{flood['logins_per_second']['max']:.1f} | no errors "
            f"({flood['login_errors']['max']:.0f}) | {_mark(flood['met'])} |",
            f"| `/health` p99 during the flood, ms | {flood['health_p99_ms']['median']:.1f} | "
            f"{flood['health_p99_ms']['min']:.1f}-{flood['health_p99_ms']['max']:.1f} | "
            f"< {HEALTH_P99_TARGET_MS:.0f} | {_mark(flood['met'])} |",
        ]
    if outbox:
        lines += [
            f"| Outbox, {method['outbox_events']:,} events, one worker: events/s | "
            f"{outbox['events_per_second']['median']:,.0f} | "
            f"{outbox['events_per_second']['min']:,.0f}-"
            f"{outbox['events_per_second']['max']:,.0f} | "
            f">= {OUTBOX_TARGET:,.0f} | {_mark(outbox['met'])} |",
        ]
    lines += [
        f"| API worker resident memory at the end of the run, MiB | {rss['after_run']:.0f} | - "
        "| - | - |",
        f"| ... and {IDLE_THREADS_EXIT_SECONDS} s later, once idle threads have exited, MiB | "
        f"{rss['settled']:.0f} | - | < {RSS_TARGET_MIB:.0f} | {_mark(rss['met'])} |",
        "",
    ]
    if not all(entry.get("met", True) for entry in report["scenarios"].values()):
        lines += [
            'Where a target is not met, ARCHITECTURE.md ("Performance") explains it with the '
            "profiles below (`make bench PROFILE=1`).",
            "",
        ]
    if report["profiles"]:
        lines += _profile_table(report["profiles"])
    return "\n".join(lines)


def _profile_table(profiles: dict[str, dict[str, float]]) -> list[str]:
    """Each scenario's largest packages by own time on the event loop thread."""
    lines = [
        "Where the API's event loop thread spends its time, by the package of the innermost "
        "Python frame (py-spy, 100 samples a second, one extra run per scenario; the raw "
        "stacks are written beside this report as `profile-*.txt`, which git ignores):",
        "",
        "| Scenario | Largest shares |",
        "|---|---|",
    ]
    for name, shares in profiles.items():
        top = ", ".join(f"{package} {share:.0%}" for package, share in list(shares.items())[:9])
        lines.append(f"| {name} | {top} |")
    return [*lines, ""]


if __name__ == "__main__":
    main()
