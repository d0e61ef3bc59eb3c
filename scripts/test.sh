#!/usr/bin/env bash
# Every test: install what is missing, then build and run the whole suite in release and under ASan+UBSan, the
# cross-shard tests under ThreadSanitizer, and each libFuzzer target for a bounded time. Exits non-zero on the
# first failing stage.
#   RINGLET_TEST_STAGES="release asan tsan fuzz"   (default) limits or extends the stages; the extra stage
#                                             `repeat` runs the release integration tests and the stress tests
#                                             (tests/stress/, ten seconds each; no other stage runs them)
#                                             RINGLET_REPEAT times each (ctest --repeat until-fail:N) to catch
#                                             tests that pass by luck.
#   RINGLET_REPEAT=5                          repetitions in the repeat stage.
#   RINGLET_TEST_HOG=1                        keeps both cores busy with a CPU hog (one spinning process per core,
#                                             at normal priority) while the stages run: every verdict must hold on
#                                             a loaded machine too.
#   RINGLET_FUZZ_SECONDS=8                    time per fuzz target (CI stays near 20 minutes on 2 cores).
#   RINGLET_TEST_JOBS=3                       ctest jobs (default: one more than cores; see test_jobs below).
# What the ASan+UBSan stage leaves to the release stage (which runs every test), because under the sanitizers these
# cost minutes and reach little that the tests it keeps do not:
#   - the volume-driven integration files of asan_skip below (not even built);
#   - StalledClientsTest's rows for http, queue and proxy (they run alone, 10-50 s each under ASan): the echo and
#     cache rows keep the flood-and-never-read paths of the stream layer under the sanitizers, and the http, queue
#     and proxy servers' own send paths run there in their integration tests (send timeouts, slow readers);
#   - all but 5 of the queue's 50 kill -9 crash cycles per backend (RINGLET_KILL9_CYCLES, read by
#     queue_server_test.cpp): each cycle starts a sanitized server, and every cycle runs the same recovery code.
# Proving a change deterministic before resolving an issue:
#   RINGLET_TEST_HOG=1 RINGLET_TEST_STAGES="release repeat" scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

jobs=$(nproc)
# Test parallelism: one test more than cores, which overlaps the waits on sockets and timers that most integration
# tests spend their time in. The tests that need a quiet machine say so in tests/CMakeLists.txt (RUN_SERIAL:
# the stalled-client tests, which judge the server's CPU use, and memcslap's run, which failed once beside another
# integration binary on a loaded machine; RESOURCE_LOCK: the flooding tests).
test_jobs=${RINGLET_TEST_JOBS:-$((jobs + 1))}
stages=${RINGLET_TEST_STAGES:-"release asan tsan fuzz"}
fuzz_seconds=${RINGLET_FUZZ_SECONDS:-8}
repeat=${RINGLET_REPEAT:-5}

# The ASan stage builds everything except these integration tests, which the release stage runs: they drive the
# server with volume (load-generator runs, 10,000 connections, nginx comparisons, allocation counts that ASan's
# allocator would distort), so under ASan they cost minutes and cover no file the other tests do not. Every source
# file still runs under ASan+UBSan through the unit and the other integration tests.
asan_skip='^integration_(bench_beanstalk|bench_memcache|bench_cli|http_vs_nginx|many_connections|steady_state_allocation|http_allocation|echo_load)_test$'
# The slow black-box rows that the ASan stage runs fewer of (see the header): ctest -E, and the kill -9 cycles per
# backend.
asan_skip_tests='StalledClientsTest\..*/(http|queue|proxy)_(uring|epoll)'
asan_kill9_cycles=5

# ccache, when installed: a clean clone (or a branch switch) takes the library, the binary, the Python module, the
# fuzz targets and the unit test files of every stage from the cache, wherever the clone is:
#   - the base directory makes the paths on the command lines relative, so clones at different paths share entries;
#   - NOHASHDIR: by default ccache also hashes the working directory of every -g compile (the ASan+UBSan and TSan
#     builds), so a clone at a new path missed every sanitized object and rebuilt the ASan library and tests from
#     scratch, CI's critical path. The cost: a sanitizer's stack trace may name the directory of the clone that
#     filled the cache (the file and line are right);
#   - the sloppiness lets ccache cache what a precompiled header goes into; the tests build without theirs under
#     ccache (tests/CMakeLists.txt says why), so their files are cached whole.
# The integration test files still compile in a clone at a new path: they have the clone's absolute path in a define
# (RINGLET_BINARY, tests/CMakeLists.txt). An environment's own CCACHE_* settings are kept.
if [[ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
  export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
  export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
fi

# Each later stage's build, as a function (configure + build, no tests).
build_asan() {
  cmake --preset asan-ubsan >/dev/null
  local targets=(ringlet) f name
  # Target names as tests/CMakeLists.txt makes them: one executable per directory of tests/unit/
  # (unit_runtime_shard_tests), one per file of tests/integration/ (integration_echo_server_test).
  for f in tests/unit/*_test.cpp tests/unit/*/*_test.cpp tests/unit/*/*/*_test.cpp tests/integration/*_test.cpp; do
    [[ -f "$f" ]] || continue
    name=${f#tests/}
    if [[ "$name" == unit/* ]]; then
      name=$(dirname "$name")_tests
    else
      name=${name%.cpp}
    fi
    name=${name//\//_}
    [[ "$name" =~ $asan_skip || " ${targets[*]} " == *" $name "* ]] || targets+=("$name")
  done
  # The Python binding when this build has it (the python_pytest_* tests run it under ASan too).
  if grep -q '^RINGLET_BUILD_PYTHON:BOOL=ON' build/asan-ubsan/CMakeCache.txt; then
    targets+=(ringlet_python ringlet_python_package)
  fi
  cmake --build --preset asan-ubsan -j"$jobs" --target "${targets[@]}"
}
build_tsan() {
  cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGLET_TSAN=ON -DRINGLET_BUILD_BENCH=OFF >/dev/null
  # One executable of the test files that hold the cross-shard tests (tests/CMakeLists.txt lists them): the files of
  # tests/unit/runtime/shard/, net/sharded_server_test.cpp, servers/cache_test.cpp and metrics_endpoint_test.cpp.
  cmake --build build/tsan -j"$jobs" --target tsan_cross_shard_tests
}
build_fuzz() {
  CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGLET_BUILD_BENCH=OFF \
    -DRINGLET_BUILD_FUZZ=ON >/dev/null
  cmake --build build/fuzz -j"$jobs" --target ringlet_fuzzers
}

hogs=()
# Stops the hogs; a background build still running is left to finish on its own.
stop_hogs() { ((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null && wait "${hogs[@]}" 2>/dev/null; true; }
trap stop_hogs EXIT
if [[ "${RINGLET_TEST_HOG:-0}" == 1 ]]; then
  for ((i = 0; i < $(nproc); ++i)); do
    (while :; do :; done) &
    hogs+=($!)
  done
  echo "=== CPU hog running on $(nproc) cores (pids ${hogs[*]})"
fi
# Tests open up to 20,000 sockets; raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" || true

# The tests wait on sockets and timers much of the time, so once the release build is done, the builds of the later
# stages run one after another in the background while the earlier stages test (that is what keeps CI near 20
# minutes on 2 cores). Each stage then waits for its own build, and shows its log if it failed.
prebuild_pid=""
prebuild() {
  local stage
  for stage in $stages; do
    case "$stage" in
      asan | tsan | fuzz)
        if "build_$stage" >"build/prebuild-$stage.log" 2>&1; then
          echo 0 >"build/prebuild-$stage.rc"
        else
          echo 1 >"build/prebuild-$stage.rc"
        fi
        ;;
    esac
  done
}
build_stage() {
  local stage=$1
  if [[ -z "$prebuild_pid" ]]; then
    "build_$stage"
    return
  fi
  while [[ ! -f "build/prebuild-$stage.rc" ]]; do sleep 1; done
  if [[ "$(cat "build/prebuild-$stage.rc")" != 0 ]]; then
    tail -80 "build/prebuild-$stage.log"
    echo "the $stage build failed (build/prebuild-$stage.log)" >&2
    exit 1
  fi
}

# After a failing ctest run, each failed test's failure again (its first failure message and what follows, up to 40
# lines, for at most three tests): ctest prints a failed test's output in the middle of the log, among the others,
# and a CI page that keeps only the log's tail would show just the names.
show_failures() {
  local log="$1/Testing/Temporary/LastTest.log"
  [[ -f "$log" ]] || return 0
  echo "=== the failures again (from $log)"
  awk '/^[0-9]+\/[0-9]+ Testing: /{n=0; failed=0; name=$0}
       {block[n++]=$0}
       /^Test Failed/{failed=1}
       /" time elapsed: /{
         if (failed && shown < 3) {
           shown++; print "--- " name; start=0
           for (i=0;i<n;i++) if (block[i] ~ /Failure|FAILED|ERROR|Sanitizer|runtime error|Assertion|terminate/) {start=i; break}
           for (i=start;i<n && i<start+40;i++) print block[i]
         }
         n=0; failed=0
       }' "$log"
}

# ctest in build directory $1 with the rest as its arguments; on failure the failures again, then the exit.
run_ctest() {
  local dir=$1 rc=0
  shift
  ctest "$@" || rc=$?
  if ((rc != 0)); then
    show_failures "$dir"
    exit "$rc"
  fi
}

# Each stage's wall time (and the release build's share) is printed as it ends and again at the end, so a slow CI
# run says where the time went.
stage_times=()
for stage in $stages; do
  stage_start=$SECONDS
  case "$stage" in
    release)
      echo "=== release build and tests"
      cmake --preset release >/dev/null
      cmake --build --preset release -j"$jobs"
      stage_times+=("release-build=$((SECONDS - stage_start))s")
      if [[ " $stages " == *" asan "* || " $stages " == *" tsan "* || " $stages " == *" fuzz "* ]]; then
        rm -f build/prebuild-*.rc
        prebuild &
        prebuild_pid=$!
      fi
      run_ctest build/release --preset release -j"$test_jobs" -LE stress  # includes python_pytest_*: the binding on Debian's python3
      python3 -m unittest discover -s bench/compare_lib -t bench -q  # the benchmark harness's own tests
      bash scripts/test-python-versions.sh  # the binding on python3.12/3.13 when present
      ;;
    repeat)
      # Every integration test RINGLET_REPEAT times in a row (the release build must exist: run after `release`).
      echo "=== release integration tests, each repeated until it fails (up to ${repeat} times)"
      cmake --preset release >/dev/null
      cmake --build --preset release -j"$jobs"
      run_ctest build/release --preset release -j"$jobs" -L "integration|stress" --repeat until-fail:"$repeat"
      ;;
    asan)
      echo "=== asan-ubsan build and tests"
      build_stage asan
      # Tests of executables left out of this build show up as *_NOT_BUILT: not failures.
      RINGLET_KILL9_CYCLES=$asan_kill9_cycles run_ctest build/asan-ubsan --preset asan-ubsan -j"$test_jobs" -LE stress \
        -E "_NOT_BUILT|$asan_skip_tests"
      ;;
    tsan)
      # Only what crosses threads: the shard runtime and the multi-shard servers (the cache's keys owned by another
      # shard, flush_all and stats over the shards: CacheShardsTest; a /metrics scrape over the shards:
      # MetricsEndpointTest).
      echo "=== threadsanitizer build and cross-shard tests"
      build_stage tsan
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_ctest build/tsan --test-dir build/tsan -j"$jobs" \
        --output-on-failure -R "ShardTest|ShardSetTest|ShardedServerTest|CacheShardsTest|MetricsEndpointTest"
      ;;
    fuzz)
      echo "=== fuzz targets (clang, libFuzzer, ${fuzz_seconds}s each, ${jobs} at a time)"
      build_stage fuzz
      # One target per core at once (each is a single process that keeps one core busy, so each still gets its
      # full time); each one's output goes to build/fuzz/<target>.log and its tail is shown in order afterwards.
      fuzz_targets=()
      for target in build/fuzz/tests/fuzz/*_fuzz; do
        [[ -x "$target" ]] && fuzz_targets+=("$target")
      done
      fuzz_status=0
      printf '%s\n' "${fuzz_targets[@]}" | xargs -P "$jobs" -I{} bash -c '
        target=$1 seconds=$2
        name=$(basename "$target")
        corpus="tests/fuzz/corpus/${name%_fuzz}"
        mkdir -p "build/fuzz/corpus/$name"
        "$target" -max_total_time="$seconds" -print_final_stats=0 "build/fuzz/corpus/$name" \
          $( [[ -d "$corpus" ]] && echo "$corpus" ) >"build/fuzz/$name.log" 2>&1' _ {} "$fuzz_seconds" ||
        fuzz_status=$?
      for target in "${fuzz_targets[@]}"; do
        name=$(basename "$target")
        echo "--- $name"
        # A target that found a crash shows more of its log: the input and the stack.
        if grep -q "^==[0-9]*==ERROR\|^SUMMARY: \|deadly signal" "build/fuzz/$name.log"; then
          tail -60 "build/fuzz/$name.log"
        else
          tail -3 "build/fuzz/$name.log"
        fi
      done
      if ((fuzz_status != 0)); then
        echo "a fuzz target failed (build/fuzz/<target>.log)" >&2
        exit 1
      fi
      ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
  stage_times+=("$stage=$((SECONDS - stage_start))s")
  echo "=== $stage stage: $((SECONDS - stage_start)) s"
done
echo "all test stages passed: $stages (${stage_times[*]}, total ${SECONDS}s)"
