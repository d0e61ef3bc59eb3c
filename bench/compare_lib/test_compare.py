"""Unit tests of bench/compare's pure parts: client output parsers, statistics and ratios, checks, the doc splice.

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


class MatrixFilesTest(unittest.TestCase):
    def test_every_matrix_file_parses(self):
        for name in matrix_mod.available_matrices():
            with self.subTest(name=name):
                m = matrix_mod.load(name)
                self.assertTrue(m.workloads)


if __name__ == "__main__":
    unittest.main()
