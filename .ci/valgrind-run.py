#!/usr/bin/env python3
"""Runs ctest's tests under valgrind, one valgrind process per test program.

ctest starts one process per GoogleTest case; under valgrind each start costs about a second,
which is most of the job's time. This takes the list ctest would run (ctest --show-only, with
the same label and name exclusions), groups the GoogleTest cases by program and runs each
program once under valgrind with a --gtest_filter naming its cases, two programs at a time.
A program holding a RUN_SERIAL case runs alone, after the others. Any other test runs under
valgrind on its own command line.

  valgrind-run.py BUILD_DIR SUPPRESSIONS EXCLUDE_LABELS EXCLUDE_TESTS VALGRIND_OPTION...

Exit status 0 when every program passed with no valgrind error (valgrind's --error-exitcode),
else 1 after printing the failed programs' output and valgrind logs.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile


def prop(test, name, default=None):
    for p in test.get("properties", []):
        if p["name"] == name:
            return p["value"]
    return default


def groups(build, exclude_labels, exclude_tests):
    out = subprocess.run(
        ["ctest", "--test-dir", build, "--show-only=json-v1", "-LE", exclude_labels, "-E", exclude_tests],
        check=True, capture_output=True, text=True).stdout
    by_program = {}
    for t in json.loads(out)["tests"]:
        cmd = t["command"]
        filt = [a for a in cmd[1:] if a.startswith("--gtest_filter=")]
        key = cmd[0] if filt else t["name"]
        g = by_program.setdefault(key, {"args": [], "names": [], "cases": [], "serial": False,
                                        "timeout": 0.0, "cwd": prop(t, "WORKING_DIRECTORY", build),
                                        "env": prop(t, "ENVIRONMENT", [])})
        if filt:
            g["args"] = [cmd[0]] + [a for a in cmd[1:] if not a.startswith("--gtest_filter=")]
            g["cases"].append(filt[0][len("--gtest_filter="):])
        else:
            g["args"] = cmd
        g["names"].append(t["name"])
        g["serial"] = g["serial"] or bool(prop(t, "RUN_SERIAL", False))
        g["timeout"] += float(prop(t, "TIMEOUT", 120))
    return by_program


def run(key, g, suppressions, options, logdir):
    args = list(g["args"])
    if g["cases"]:
        args.append("--gtest_filter=" + ":".join(g["cases"]))
    log = os.path.join(logdir, os.path.basename(key).replace("/", "_") + ".%p.log")
    cmd = ["valgrind", *options, "--suppressions=" + suppressions, "--log-file=" + log, *args]
    env = dict(os.environ)
    for kv in g["env"] or []:
        k, _, v = kv.partition("=")
        env[k] = v
    try:
        p = subprocess.run(cmd, cwd=g["cwd"], env=env, capture_output=True, text=True,
                           timeout=min(g["timeout"] * 3, 1800))
        status, output = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        partial = e.stdout or ""
        status, output = "timeout", partial.decode(errors="replace") if isinstance(partial, bytes) else partial
    logs = "".join(open(os.path.join(logdir, f)).read() for f in sorted(os.listdir(logdir))
                   if f.startswith(os.path.basename(key).replace("/", "_") + "."))
    return key, g, status, output, logs


def main():
    build, suppressions, exclude_labels, exclude_tests, *options = sys.argv[1:]
    progs = groups(build, exclude_labels, exclude_tests)
    parallel = [(k, g) for k, g in progs.items() if not g["serial"]]
    serial = [(k, g) for k, g in progs.items() if g["serial"]]
    failed = []
    cases = 0
    with tempfile.TemporaryDirectory(prefix="aiopp-valgrind-") as logdir:
        def report(result):
            nonlocal cases
            key, g, status, output, logs = result
            cases += len(g["names"])
            word = "ok" if status == 0 else f"FAILED ({status})"
            print(f"valgrind: {os.path.basename(key)}: {len(g['names'])} tests: {word}", flush=True)
            if status != 0:
                failed.append(key)
                print(output[-20000:])
                print(f"valgrind: ===== {key}: valgrind log =====\n{logs[-20000:]}", flush=True)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for r in pool.map(lambda kg: run(kg[0], kg[1], suppressions, options, logdir), parallel):
                report(r)
        for k, g in serial:
            report(run(k, g, suppressions, options, logdir))
    if failed:
        print(f"valgrind: FAILED: {', '.join(os.path.basename(k) for k in failed)}")
        return 1
    print(f"valgrind: {cases} tests in {len(progs)} programs ran clean under memcheck "
          "(no errors, no definite/indirect leaks; ring off)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
