#!/usr/bin/python3
"""Runs the GenPulse black-box tests.

Usage: /usr/bin/python3 tests/blackbox/run.py [NAME_FILTER]

Server binary: $GENPULSE_BIN or build/genpulse. Prints "ok NAME" or
"FAIL NAME: reason" (followed by the tail of the server's stderr) per test, then
"N passed, N failed"; exits 1 if any test failed.
Environment: BLACKBOX_KEEP=1 keeps the data dirs and logs; BLACKBOX_LEAKS=1 also treats
LeakSanitizer reports as failures.
"""
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Ctx, GROUPS, Server, Skip, TESTS, TestFailure  # noqa: E402
import glob  # noqa: E402
import importlib  # noqa: E402

# Every tests/blackbox/test_*.py registers its tests on import.
for _path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_*.py"))):
    importlib.import_module(os.path.splitext(os.path.basename(_path))[0])


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def report(self, name, problem, servers=(), elapsed=None):
        if isinstance(problem, Skip):
            self.skipped += 1
            print("skip %s: %s" % (name, problem), flush=True)
            return
        if problem is None:
            self.passed += 1
            print("ok %s%s" % (name, "" if elapsed is None else " (%.1fs)" % elapsed), flush=True)
            return
        self.failed += 1
        print("FAIL %s: %s" % (name, problem), flush=True)
        for s in servers:
            tail = s.stderr_tail(25)
            if tail:
                print("    --- server stderr tail (%s) ---" % os.path.basename(s.stderr_path))
                for line in tail:
                    print("    | " + line[:300])
        sys.stdout.flush()

    def run_fn(self, t, ctx):
        try:
            t["fn"](ctx)
            return None
        except Skip as e:
            return e
        except TestFailure as e:
            return str(e)
        except Exception as e:  # a bug in the test or an unexpected client-side error
            tb = traceback.extract_tb(e.__traceback__)
            where = "%s:%d" % (os.path.basename(tb[-1].filename), tb[-1].lineno) if tb else "?"
            return "%s: %s (at %s)" % (type(e).__name__, e, where)

    def sanitizer_problems(self, servers):
        probs = []
        for s in servers:
            p = s.new_sanitizer_reports()
            if p:
                probs.append(p)
        return probs

    def run_group(self, gname, tests):
        srv = Server(GROUPS[gname], name=gname)
        try:
            srv.start()
        except TestFailure as e:
            for t in tests:
                self.report(t["name"], "group %s server did not start: %s" % (gname, e), [srv])
            srv.stop()
            return
        for t in tests:
            if not srv.alive():
                srv.new_sanitizer_reports()
                try:
                    srv.start()
                except TestFailure as e:
                    self.report(t["name"], "group server restart failed: %s" % e, [srv])
                    continue
            srv.new_sanitizer_reports()
            ctx = Ctx(srv)
            t0 = time.time()
            problem = self.run_fn(t, ctx)
            extra = [s for s in ctx.servers if s is not srv]
            for s in extra:
                p = s.stop()
                if p and not problem:
                    problem = p
            probs = self.sanitizer_problems(ctx.servers)
            if not srv.alive():
                probs.append("server process died (exit code %s)" % srv.proc.returncode)
            if probs:
                problem = "; ".join(probs + (["(test saw: %s)" % problem] if problem else []))
            self.report(t["name"], problem, ctx.servers if problem else (), time.time() - t0)
        p = srv.stop()
        probs = ([p] if p else []) + self.sanitizer_problems([srv])
        self.report("shutdown_clean[%s]" % gname, "; ".join(probs) if probs else None,
                    [srv] if probs else ())

    def run_single(self, t):
        t0 = time.time()
        ctx = Ctx(None)
        problem = None
        if not t["own"]:
            srv = ctx.new_server(t["args"] or [], name=t["name"])
            try:
                srv.start()
                ctx.srv = srv
            except TestFailure as e:
                problem = "server did not start: %s" % e
        if problem is None:
            problem = self.run_fn(t, ctx)
        for s in ctx.servers:
            p = s.stop()
            if p and not problem:
                problem = p
        probs = self.sanitizer_problems(ctx.servers)
        if probs:
            problem = "; ".join(probs + (["(test saw: %s)" % problem] if problem else []))
        self.report(t["name"], problem, ctx.servers if problem and not isinstance(problem, Skip)
                    else (), time.time() - t0)


def main():
    filt = sys.argv[1] if len(sys.argv) > 1 else ""
    selected = [t for t in TESTS if filt in t["name"]]
    runner = Runner()
    t0 = time.time()
    try:
        for gname in GROUPS:
            group_tests = [t for t in selected if t["group"] == gname]
            if group_tests:
                runner.run_group(gname, group_tests)
        for t in selected:
            if t["group"] is None:
                runner.run_single(t)
    finally:
        harness.cleanup_run_dir()
    print("(%.1fs)" % (time.time() - t0))
    print("%d passed, %d failed, %d skipped" % (runner.passed, runner.failed, runner.skipped))
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main())
