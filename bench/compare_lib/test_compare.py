"""Unit tests of bench/compare's pure parts: client output parsers, statistics and ratios, checks, the doc splice,
the idle-memory measure (its client's output, /proc status parsing, matrix rules, its table and checks) and program
matrices (their command lines and section).

  python3 -m unittest discover -s bench/compare_lib -t bench
"""
from __future__ import annotations

import json
import unittest

from compare_lib import matrix as matrix_mod
from compare_lib.drivers import DRIVERS, ParseError, error_total, last_json_object
from compare_lib.report import Results, evaluate_check, marker_pair, render_section, splice

ECHO_LOAD_OUT = """window_start
window_end
{"messages_per_sec": 85757.2, "messages": 257271, "errors": 0, "seconds": 3.0001, "messages_total": 340000,
 "connections": 50, "depth": 1, "size": 64}
""".replace("\n ", " ")

RINGLET_BENCH_OUT = json.dumps({
    "workload": "http", "target": "http://127.0.0.1:1/13b.txt", "mode": "closed", "connections": 50, "depth": 1,
    "threads": 1, "duration_s": 3.0, "warmup_s": 1.0, "rate": None, "requests": 300000, "throughput": 100000.0,
    "errors": 2, "errors_by_kind": {"connect": 0, "reset": 2, "timeout": 0, "wrong_reply": 0, "other": 0},
    "latency_us": {"min": 10.0, "mean": 400.0, "p50": 350.0, "p90": 600.0, "p99": 900.0, "p999": 1500.0,
                   "p9999": 2000.0, "max": 2500.0},
    "client_cpu": {"user_s": 1.0, "sys_s": 2.0, "wall_s": 4.0, "per_thread": [0.75], "saturated": False},
}, indent=2)

WRK_OUT = """Running 3s test @ http://127.0.0.1:8080/13b.txt
  1 threads and 50 connections
  45314 requests in 3.00s, 10.76MB read
Requests/sec:  15104.67
{"wrk_requests": 45314, "wrk_duration_us": 3000000, "wrk_bytes": 11283186, "errors": {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 0}, "latency_us": {"p50": 613, "p90": 9140, "p99": 16300, "p999": 24000, "max": 28240}}
"""


class ParserTest(unittest.TestCase):
    def test_echo_load_json_after_markers(self):
        r = DRIVERS["echo_load"].parse(ECHO_LOAD_OUT)
        self.assertAlmostEqual(r.throughput, 85757.2)
        self.assertEqual(r.errors, 0)
        self.assertEqual(r.ops, 257271)
        self.assertEqual(r.latency_us, {})

    def test_ringlet_bench_pretty_printed_object(self):
        r = DRIVERS["ringlet-bench"].parse(RINGLET_BENCH_OUT)
        self.assertEqual(r.throughput, 100000.0)
        self.assertEqual(r.errors, 2)
        self.assertEqual(r.latency_us, {"p50": 350.0, "p90": 600.0, "p99": 900.0, "p999": 1500.0, "max": 2500.0})
        self.assertEqual(r.ops, 300000)
        self.assertEqual(r.seconds, 3.0)

    def test_wrk_summary_line_after_text(self):
        r = DRIVERS["wrk"].parse(WRK_OUT)
        self.assertAlmostEqual(r.throughput, 45314 / 3.0)
        self.assertEqual(r.errors, 4)
        self.assertEqual(r.latency_us["p99"], 16300)

    def test_output_without_json_is_a_parse_error(self):
        with self.assertRaises(ParseError):
            DRIVERS["wrk"].parse("unable to connect to 127.0.0.1:1 Connection refused\n")

    def test_errors_by_kind_are_summed(self):
        self.assertEqual(error_total({"connect": 1, "reset": 2}), 3)
        self.assertEqual(error_total({"total": 5, "reset": 2}), 5)
        self.assertEqual(error_total(7), 7)

    def test_ringlet_bench_argv_maps_parameters_to_flags(self):
        from compare_lib.drivers import RingletBench, Workload
        w = Workload("m", "memcache", {"connections": 8, "keys": 100, "get_ratio": 0.5, "preload": True,
                                       "noreply": False})
        self.assertEqual(RingletBench.kind_args(w), ["--keys", "100", "--get-ratio", "0.5", "--preload"])

    def test_last_json_line_wins(self):
        self.assertEqual(last_json_object('{"a": 1}\nnoise\n{"a": 2}\n'), {"a": 2})


def make_matrix(**overrides):
    data = {
        "name": "t", "title": "T", "compare": "server", "baseline": "epoll-c",
        "servers": ["ringlet-uring", "epoll-c"], "clients": ["echo_load"],
        "workloads": [{"name": "w1", "kind": "echo", "size": 64, "connections": 50, "depth": 1}],
        "checks": [{"label": "cpu", "subject": "ringlet-uring", "metric": "cpu_ratio", "op": "<=", "value": 0.9}],
    }
    data.update(overrides)
    return matrix_mod.parse(data)


def record(server, rep, throughput, cpu_us, errors=0, workload="w1", client="echo_load"):
    return {"workload": workload, "server": server, "client": client, "rep": rep, "throughput": throughput,
            "cpu_us_per_op": cpu_us, "cpu_pct": 50.0, "errors": errors, "latency_us": {}, "warnings": [],
            "threads": []}


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.m = make_matrix()
        self.records = [record("ringlet-uring", 0, 110, 4.0), record("epoll-c", 0, 100, 5.0),
                        record("ringlet-uring", 1, 90, 4.5), record("epoll-c", 1, 100, 5.0),
                        record("ringlet-uring", 2, 100, 6.0), record("epoll-c", 2, 100, 4.0)]
        self.results = Results(self.m, self.records)

    def test_ratio_of_medians_and_per_repetition_range(self):
        r = self.results.ratio(("w1", "ringlet-uring", "echo_load"), "cpu_us_per_op")
        self.assertAlmostEqual(r.of_medians, 4.5 / 5.0)
        self.assertAlmostEqual(r.low, 0.8)
        self.assertAlmostEqual(r.high, 1.5)

    def test_check_compares_the_ratio_of_medians(self):
        [(where, text, target, verdict)] = evaluate_check(self.results, self.m.checks[0])
        self.assertEqual(verdict, "PASS")  # 0.90 <= 0.9
        self.assertTrue(text.startswith("0.90×"))

    def test_check_fails_above_target(self):
        results = Results(self.m, [record("ringlet-uring", 0, 100, 5.0), record("epoll-c", 0, 100, 5.0)])
        self.assertEqual(evaluate_check(results, self.m.checks[0])[0][3], "FAIL")

    def test_check_without_subject_run_says_not_run(self):
        results = Results(self.m, [record("epoll-c", 0, 100, 5.0)])
        self.assertEqual(evaluate_check(results, self.m.checks[0])[0][3], "not run")

    def test_error_check_is_one_row_naming_the_cells_with_errors(self):
        m = make_matrix(checks=[{"label": "e", "subject": ["ringlet-uring", "epoll-c"], "metric": "errors",
                                 "op": "==", "value": 0}])
        results = Results(m, [record("ringlet-uring", 0, 100, 5.0, errors=3), record("epoll-c", 0, 100, 5.0)])
        [(where, text, target, verdict)] = evaluate_check(results, m.checks[0])
        self.assertEqual((text, verdict), ("3", "FAIL"))
        self.assertIn("ringlet-uring in w1: 3", where)

    def test_workload_baseline_overrides_the_matrix_baseline(self):
        m = make_matrix(compare="client", baseline="wrk", servers=["nginx", "memcached"],
                        clients=["wrk", "ringlet-bench", "simple-memcache"], checks=[],
                        workloads=[{"name": "h", "kind": "http", "path": "/13b.txt"},
                                   {"name": "m", "kind": "memcache", "baseline": "simple-memcache"}])
        recs = [record("memcached", 0, 90, 1.0, workload="m", client="ringlet-bench"),
                record("memcached", 0, 100, 1.0, workload="m", client="simple-memcache")]
        r = Results(m, recs).ratio(("m", "memcached", "ringlet-bench"), "throughput")
        self.assertAlmostEqual(r.of_medians, 0.9)

    def test_unknown_baseline_is_rejected(self):
        with self.assertRaises(matrix_mod.MatrixError):
            make_matrix(baseline="nginx")

    def test_section_has_command_and_table(self):
        meta = {"date": "d", "commit": "c", "kernel": "k", "cpu": "cpu", "cpus": 2, "server_cpus": "1",
                "client_cpus": "0", "reps": 3, "duration": 5.0, "warmup": 1.0, "command": "bench/compare --x",
                "tools": {}, "skipped": []}
        text = render_section(self.results, meta, "benchmarks/t.png")
        self.assertIn("`bench/compare --x`", text)
        self.assertIn("| w1 (64 B × 50 conn × depth 1) | ringlet-uring |", text)
        self.assertIn("**PASS**", text)
        self.assertIn("![T](benchmarks/t.png)", text)

    def test_client_cpu_column_when_the_matrix_asks_for_it(self):
        m = make_matrix(client_cpu=True)
        recs = [dict(record("ringlet-uring", 0, 100, 4.0),
                     client_raw={"client_cpu": {"user_s": 0.3, "sys_s": 0.9, "wall_s": 3.0, "per_thread": [0.4],
                                                "saturated": False}}),
                record("epoll-c", 0, 100, 5.0)]  # a client that reports no CPU: "–"
        meta = {"date": "d", "commit": "c", "kernel": "k", "cpu": "cpu", "cpus": 2, "server_cpus": "1",
                "client_cpus": "0", "reps": 1, "duration": 3.0, "warmup": 1.0, "command": "bench/compare --x",
                "tools": {}, "skipped": []}
        text = render_section(Results(m, recs), meta, None)
        self.assertIn("| server CPU % | client CPU % | errors |", text)
        self.assertIn("| 50 | 40 | 0 |", text)
        self.assertIn("| 50 | – | 0 |", text)
        self.assertNotIn("client CPU %", render_section(self.results, meta, None))


def floor_matrix():
    """memcached against ringlet cache, with the echo server's cost of the same round trips as each row's floor."""
    return make_matrix(baseline="memcached", servers=["ringlet-cache", "memcached",
                                                      {"name": "ringlet-echo", "label": "ringlet-echo-floor"}],
                       clients=["ringlet-bench", "echo_load"],
                       workloads=[{"name": "mc", "kind": "memcache", "value_size": 64, "clients": ["ringlet-bench"],
                                   "floor": "fl"},
                                  {"name": "fl", "kind": "echo", "size": 64, "clients": ["echo_load"],
                                   "baseline": "ringlet-echo-floor"}],
                       checks=[])


class FloorTest(unittest.TestCase):
    META = {"date": "d", "commit": "c", "kernel": "k", "cpu": "cpu", "cpus": 2, "server_cpus": "1",
            "client_cpus": "0", "reps": 2, "duration": 5.0, "warmup": 1.0, "command": "bench/compare --x",
            "tools": {}, "skipped": []}

    def setUp(self):
        self.m = floor_matrix()
        self.records = [record("ringlet-cache", 0, 100, 2.0, workload="mc", client="ringlet-bench"),
                        record("memcached", 0, 100, 4.0, workload="mc", client="ringlet-bench"),
                        record("ringlet-echo-floor", 0, 100, 1.0, workload="fl"),
                        record("ringlet-cache", 1, 100, 3.0, workload="mc", client="ringlet-bench"),
                        record("memcached", 1, 100, 4.0, workload="mc", client="ringlet-bench"),
                        record("ringlet-echo-floor", 1, 100, 2.0, workload="fl")]
        self.results = Results(self.m, self.records)

    def test_a_row_is_divided_by_its_floors_cpu_per_message_paired_by_repetition(self):
        key = ("mc", "ringlet-cache", "ringlet-bench")
        self.assertEqual(self.results.floor_key(key), ("fl", "ringlet-echo-floor", "echo_load"))
        r = self.results.ratio(key, "cpu_us_per_op", self.results.floor_key(key))
        self.assertAlmostEqual(r.of_medians, 2.5 / 1.5)
        self.assertAlmostEqual(r.low, 1.5)   # rep 1: 3.0 / 2.0
        self.assertAlmostEqual(r.high, 2.0)  # rep 0: 2.0 / 1.0

    def test_the_table_shows_the_floor_beside_each_row(self):
        text = render_section(self.results, self.META, None)
        self.assertIn("floor: echo CPU µs/msg | CPU/op vs floor", text)
        row = next(line for line in text.splitlines() if "| mc (" in line and "| ringlet-cache |" in line)
        self.assertIn("| 1.50 (1.00–2.00) | 1.67× (1.50–2.00) |", row)
        memcached = next(line for line in text.splitlines() if "| mc (" in line and "| memcached |" in line)
        self.assertIn("| 1.50 (1.00–2.00) | 2.67× (2.00–4.00) |", memcached)

    def test_a_table_without_floors_has_no_floor_columns(self):
        text = render_section(Results(make_matrix(), [record("epoll-c", 0, 100, 5.0)]), self.META, None)
        self.assertNotIn("floor", text)

    def test_workload_clients_pick_who_runs_it_and_a_floor_runs_with_only_its_baseline(self):
        import dataclasses
        from unittest import mock
        m = self.m
        for use in m.servers:  # every server and client "can run here"
            use.spec = dataclasses.replace(use.spec, check=lambda env: None)
        with mock.patch.object(DRIVERS["echo_load"], "check", lambda env, kind: None), \
                mock.patch.object(DRIVERS["ringlet-bench"], "check", lambda env, kind: None):
            plan = matrix_mod.plan(m, env=None)
            asked = matrix_mod.plan(m, env=None, only_workloads={"mc"})
        self.assertEqual(sorted(c.key for c in plan.cells),
                         [("fl", "ringlet-echo-floor", "echo_load"), ("mc", "memcached", "ringlet-bench"),
                          ("mc", "ringlet-cache", "ringlet-bench")])
        self.assertEqual(plan.skipped, [])
        self.assertEqual({c.workload.name for c in asked.cells}, {"mc", "fl"})  # a row brings its floor along

    def test_a_floor_must_be_an_echo_workload_of_the_matrix(self):
        with self.assertRaises(matrix_mod.MatrixError):
            make_matrix(workloads=[{"name": "w1", "kind": "echo", "size": 64, "floor": "nowhere"}])

    def test_workload_clients_must_be_the_matrixs(self):
        with self.assertRaises(matrix_mod.MatrixError):
            make_matrix(workloads=[{"name": "w1", "kind": "echo", "size": 64, "clients": ["wrk"]}])

    def test_echo_load_reconnects_per_exchange_when_the_workload_says(self):
        from compare_lib.drivers import Workload
        from pathlib import Path
        w = Workload("c", "echo", {"size": 64, "connections": 50, "reconnect": True})

        class FakeEnv:
            def build_binary(self, relative):
                return Path("/b") / relative
        argv = DRIVERS["echo_load"].argv(FakeEnv(), w, 1234, 5.0, 1.0, Path("/tmp"))
        self.assertEqual(argv[-1], "--reconnect")
        self.assertIn("a new connection per exchange", w.summary())
        plain = Workload("e", "echo", {"size": 64})
        self.assertNotIn("--reconnect", DRIVERS["echo_load"].argv(FakeEnv(), plain, 1234, 5.0, 1.0, Path("/tmp")))


class ShardLogTest(unittest.TestCase):
    def test_last_line_per_shard_wins(self):
        from compare_lib.runner import shard_connections
        log = ("I echo: 2 shard(s), accept mode reuseport\n"
               "I stats: shard 0 (cpu 0): 3 open, 10 accepted, 1 B in, 1 B out, messages 0 sent 0 received\n"
               "I shard 1 (cpu 1): 0 open, 26 accepted, 5 B in, 5 B out, messages 0 sent 0 received\n"
               "I shard 0 (cpu 0): 0 open, 25 accepted, 5 B in, 5 B out, messages 0 sent 0 received\n")
        self.assertEqual(shard_connections(log), {"0": 25, "1": 26})
        self.assertEqual(shard_connections("epoll_echo: listening\n"), {})


class SpliceTest(unittest.TestCase):
    def test_replaces_only_between_markers(self):
        begin, end = marker_pair("echo")
        doc = f"# B\n\nhand-written\n\n{begin}\nold\n{end}\n\nafter\n"
        out = splice(doc, "echo", "Echo", "new table")
        self.assertEqual(out, f"# B\n\nhand-written\n\n{begin}\nnew table\n{end}\n\nafter\n")

    def test_appends_a_heading_when_markers_are_missing(self):
        out = splice("# B\n", "http", "HTTP", "table")
        begin, end = marker_pair("http")
        self.assertEqual(out, f"# B\n\n## HTTP\n\n{begin}\ntable\n{end}\n")

    def test_is_idempotent(self):
        once = splice("# B\n", "x", "X", "t")
        self.assertEqual(splice(once, "x", "X", "t"), once)


def idle_matrix(**overrides):
    data = {
        "name": "idle", "title": "Idle", "measure": "idle_memory", "compare": "server", "baseline": "libuv",
        "servers": ["ringlet-uring", "epoll-c", "libuv"], "clients": ["idle-conns"],
        "workloads": [{"name": "idle_10k", "kind": "echo", "connections": 10000, "batch": 100,
                       "description": "10,000 idle connections"}],
        "checks": [{"label": "512", "subject": "ringlet-uring", "metric": "bytes_per_connection", "op": "<=",
                    "value": 512}],
    }
    data.update(overrides)
    return matrix_mod.parse(data)


def memory_record(server, rep, before_kib, after_kib, connections=10000):
    return {"measure": "idle_memory", "workload": "idle_10k", "server": server, "client": "idle-conns", "rep": rep,
            "connections": connections, "rss_before_kib": before_kib, "rss_after_kib": after_kib,
            "bytes_per_conn": (after_kib - before_kib) * 1024 / connections, "settle_s": 0.5, "errors": 0,
            "warnings": []}


class IdleMemoryTest(unittest.TestCase):
    def test_vmrss_is_read_from_proc_status_text(self):
        from compare_lib.procstat import status_kib
        text = "Name:\tepoll_echo\nVmPeak:\t    2600 kB\nVmRSS:\t    1260 kB\nThreads:\t1\n"
        self.assertEqual(status_kib(text, "VmRSS"), 1260)
        self.assertIsNone(status_kib("Name:\tkthreadd\nThreads:\t1\n", "VmRSS"))

    def test_this_process_has_a_resident_size(self):
        import os
        from compare_lib.procstat import TreeSampler, rss_kib
        self.assertGreater(rss_kib(os.getpid()), 0)
        self.assertGreater(TreeSampler(os.getpid()).rss_kib(), 0)

    def test_idle_client_output_gives_its_connection_count(self):
        r = DRIVERS["idle-conns"].parse('{"connections": 10000, "seconds": 2.5}\nholding')
        self.assertEqual(r.ops, 10000)
        self.assertEqual(r.seconds, 2.5)
        self.assertEqual(r.errors, 0)
        with self.assertRaises(ParseError):
            DRIVERS["idle-conns"].parse('{"seconds": 2.5}\nholding')

    def test_idle_client_argv_carries_connections_and_batch(self):
        from pathlib import Path
        from compare_lib.env import Env
        w = idle_matrix().workloads[0]
        argv = DRIVERS["idle-conns"].argv(Env.__new__(Env), w, 4242, 0.0, 0.0, Path("/tmp"))
        self.assertTrue(argv[1].endswith("compare_lib/idle_client.py"))
        self.assertEqual(argv[2:], ["--port", "4242", "--connections", "10000", "--batch", "100"])

    def test_a_matrix_uses_clients_of_its_own_measure(self):
        self.assertEqual(idle_matrix().measure, "idle_memory")
        self.assertEqual(make_matrix().measure, "cpu")
        with self.assertRaises(matrix_mod.MatrixError):
            idle_matrix(clients=["echo_load"])
        with self.assertRaises(matrix_mod.MatrixError):
            make_matrix(clients=["idle-conns"])
        with self.assertRaises(matrix_mod.MatrixError):
            idle_matrix(measure="latency")

    def test_checks_must_fit_the_measure(self):
        with self.assertRaises(matrix_mod.MatrixError):
            idle_matrix(checks=[{"subject": "ringlet-uring", "metric": "cpu_ratio", "op": "<=", "value": 1}])
        with self.assertRaises(matrix_mod.MatrixError):
            make_matrix(checks=[{"subject": "ringlet-uring", "metric": "bytes_per_connection", "op": "<=",
                                 "value": 512}])

    def test_bytes_per_connection_ratio_is_against_the_baseline(self):
        m = idle_matrix()
        results = Results(m, [memory_record("ringlet-uring", 0, 20000, 25000),
                              memory_record("libuv", 0, 1600, 4100)])
        r = results.ratio(("idle_10k", "ringlet-uring", "idle-conns"), "bytes_per_conn")
        self.assertAlmostEqual(r.of_medians, 5000 / 2500)

    def test_absolute_check_compares_the_median_bytes(self):
        m = idle_matrix()
        under = [memory_record("ringlet-uring", rep, 20000, 20000 + kib) for rep, kib in enumerate((4000, 5000, 9000))]
        [(where, text, target, verdict)] = evaluate_check(Results(m, under), m.checks[0])
        self.assertEqual((target, verdict), ("<= 512 B", "PASS"))  # median 5000 KiB / 10000 = 512 B
        self.assertTrue(text.startswith("512 (410–922) B"), text)
        over = [memory_record("ringlet-uring", 0, 20000, 26000)]
        self.assertEqual(evaluate_check(Results(m, over), m.checks[0])[0][3], "FAIL")

    def test_memory_section_shows_rss_and_bytes_per_connection(self):
        m = idle_matrix()
        results = Results(m, [memory_record("ringlet-uring", 0, 20780, 25656), memory_record("epoll-c", 0, 1160, 1280),
                              memory_record("libuv", 0, 1780, 4452)])
        meta = {"date": "d", "commit": "c", "kernel": "k", "cpu": "cpu", "cpus": 2, "server_cpus": "1",
                "client_cpus": "0", "reps": 1, "duration": 5.0, "warmup": 1.0,
                "command": "bench/compare --matrix idle", "tools": {}, "skipped": []}
        text = render_section(results, meta, None)
        self.assertIn("| idle_10k (10,000 idle connections) | ringlet-uring | 10,000 | 20,780 | 25,656 | 499 | 1.82× |", text)
        self.assertIn("| idle_10k (10,000 idle connections) | libuv | 10,000 | 1,780 | 4,452 | 274 | 1 (baseline) |", text)
        self.assertIn("each reading waits 0.5 s", text)
        self.assertIn("| 512 | idle_10k | 499 B | <= 512 B | **PASS** |", text)
        self.assertNotIn("ops/s", text)

    def test_progress_line_names_the_measure(self):
        from compare_lib.runner import describe
        self.assertIn("499 B/conn", describe(memory_record("ringlet-uring", 0, 20780, 25656)))
        cpu = record("epoll-c", 0, 100000, 5.0)
        self.assertIn("100,000 ops/s, server 5.000 µs/op", describe(cpu))

    def test_smoke_caps_connections_and_says_so_in_the_description(self):
        m = idle_matrix()
        matrix_mod.cap_connections(m, 20, "smoke run")
        w = m.workloads[0]
        self.assertEqual(w.connections, 20)
        self.assertEqual(w.summary(), "10,000 idle connections — smoke run: 20 connections")
        echo = make_matrix()
        matrix_mod.cap_connections(echo, 20, "smoke run")
        self.assertEqual(echo.workloads[0].summary(), "64 B × 20 conn × depth 1")

    def test_fd_limit_beyond_the_hard_limit_is_refused(self):
        import resource
        from compare_lib.runner import RunFailed, raise_fd_limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            self.skipTest("no hard limit on descriptors here")
        with self.assertRaises(RunFailed):
            raise_fd_limit(hard + 1)
        raise_fd_limit(min(soft, hard))  # already enough: nothing to do, nothing raised


def program_matrix(**overrides):
    data = {"name": "timers", "title": "Timers", "about": "About.", "measure": "program", "server_cpus": "1",
            "programs": [{"name": "timers_1m", "target": "timers_bench", "binary": "bench/timers/timers_bench",
                          "args": ["--sizes", "1000000"], "smoke_args": ["--sizes", "10000"]},
                         {"name": "timers_10m", "target": "timers_bench", "binary": "bench/timers/timers_bench",
                          "args": ["--sizes", "10000000"], "reps": 3, "cpus": "0,1"}]}
    data.update(overrides)
    return matrix_mod.parse(data)


class ProgramMatrixTest(unittest.TestCase):
    def env(self):
        from pathlib import Path
        from compare_lib.env import Env
        env = Env.__new__(Env)
        env.repo, env.build_dir = Path("/repo"), Path("/repo/build/release")
        return env

    def test_a_program_matrix_has_programs_and_nothing_else(self):
        m = program_matrix()
        self.assertEqual(m.measure, "program")
        self.assertEqual([p.name for p in m.programs], ["timers_1m", "timers_10m"])
        self.assertEqual((m.servers, m.clients, m.workloads, m.checks), ([], [], [], []))
        with self.assertRaises(matrix_mod.MatrixError):
            program_matrix(programs=[])
        with self.assertRaises(matrix_mod.MatrixError):
            program_matrix(programs=[{"name": "x", "binary": "bench/x"}])
        with self.assertRaises(matrix_mod.MatrixError):
            program_matrix(programs=[{"name": "x", "target": "x", "binary": "bench/x", "reps": 0}])

    def test_argv_is_pinned_and_takes_the_command_lines_reps_unless_the_program_fixes_its_own(self):
        from compare_lib.programs import program_argv, shown_command
        one_m, ten_m = program_matrix().programs
        env = self.env()
        argv = program_argv(env, one_m, 5, "1", smoke=False)
        self.assertEqual(argv, ["taskset", "-c", "1", "/repo/build/release/bench/timers/timers_bench", "--reps", "5",
                                "--sizes", "1000000"])
        self.assertEqual(shown_command(env, argv), "build/release/bench/timers/timers_bench --reps 5 --sizes 1000000")
        self.assertEqual(program_argv(env, ten_m, 5, "1", smoke=False)[:7],
                         ["taskset", "-c", "0,1", "/repo/build/release/bench/timers/timers_bench", "--reps", "3",
                          "--sizes"])

    def test_a_script_program_runs_under_its_interpreter_with_the_build_directory(self):
        from compare_lib.programs import program_argv, shown_command
        m = program_matrix(programs=[{"name": "py", "target": "ringlet_python", "interpreter": "/usr/bin/python3",
                                      "binary": "bench/python/loop_bench.py", "args": ["--calls", "10"]}])
        env = self.env()
        argv = program_argv(env, m.programs[0], 3, "1", smoke=False)
        self.assertEqual(argv, ["taskset", "-c", "1", "/usr/bin/python3", "/repo/bench/python/loop_bench.py",
                                "--build-dir", "/repo/build/release", "--reps", "3", "--calls", "10"])
        self.assertEqual(shown_command(env, argv),
                         "/usr/bin/python3 bench/python/loop_bench.py --build-dir build/release --reps 3 --calls 10")

    def test_smoke_runs_once_with_the_tiny_arguments(self):
        from compare_lib.programs import program_argv
        one_m, ten_m = program_matrix().programs
        self.assertEqual(program_argv(self.env(), one_m, 5, "1", smoke=True)[4:], ["--reps", "1", "--sizes", "10000"])
        # Without smoke_args a smoke run keeps the full arguments, but still one repetition.
        self.assertEqual(program_argv(self.env(), ten_m, 5, "1", smoke=True)[4:],
                         ["--reps", "1", "--sizes", "10000000"])

    def test_section_shows_each_command_and_its_output_verbatim(self):
        from compare_lib.programs import render_section
        meta = {"date": "d", "commit": "c", "kernel": "k", "cpu": "cpu", "cpus": 2,
                "command": "bench/compare --matrix timers --reps 5", "skipped": [("timers_10m", "not built")]}
        records = [{"program": "timers_1m", "argv": ["taskset", "-c", "1", "/x/timers_bench"],
                    "command": "build/release/bench/timers/timers_bench --reps 5 --sizes 1000000",
                    "stdout": "workload impl median\ntimers_arm_cancel_1m ringlet 29.63\n"}]
        text = render_section("About.", records, meta)
        self.assertTrue(text.startswith("About.\n"))
        self.assertIn("`bench/compare --matrix timers --reps 5`", text)
        self.assertIn("`build/release/bench/timers/timers_bench --reps 5 --sizes 1000000` (CPU 1):\n\n```\n"
                      "workload impl median\ntimers_arm_cancel_1m ringlet 29.63\n```", text)
        self.assertIn("Not run: timers_10m — not built.", text)


class MatrixFilesTest(unittest.TestCase):
    def test_every_matrix_file_parses(self):
        for name in matrix_mod.available_matrices():
            with self.subTest(name=name):
                m = matrix_mod.load(name)
                self.assertTrue(m.programs if m.measure == "program" else m.workloads)


if __name__ == "__main__":
    unittest.main()
