#!/usr/bin/env python3
"""Branch-coverage report and gate for src/ (used by .ci/jobs/40-coverage.sh).

usage: coverage-report.py IN.info OUT.info BUILD_DIR ROOT MIN_BRANCH_PERCENT

IN.info is lcov's capture, already reduced to src/. Debian bookworm's lcov 1.16 accepts
--rc geninfo_no_exception_branch=1 but ignores it with GCC >= 9's JSON gcov output (its
geninfo defines intermediate_json_to_info twice and the second copy, which wins, never
looks at the "throw" flag). So this script asks gcov itself (gcov --json-format) which
branches are exception edges, drops those BRDA records, and writes OUT.info (a valid lcov
file: `lcov --list OUT.info`, `genhtml OUT.info` work on it).

Then it prints one row per source file (lines hit/found, branches hit/found), the totals,
every branch never taken (file:line, branch index, the source line), and exits 1 if total
branch coverage is below MIN_BRANCH_PERCENT (or if there is no branch data at all).
"""
import json
import os
import subprocess
import sys
import tempfile


def throw_edges(build_dir, root):
    """{(source path, line, branch index)} of exception edges, from gcov's JSON output."""
    gcdas = []
    for dirpath, _, names in os.walk(build_dir):
        gcdas += [os.path.abspath(os.path.join(dirpath, n)) for n in names if n.endswith(".gcda")]
    edges = set()
    if not gcdas:
        return edges
    with tempfile.TemporaryDirectory() as tmp:  # gcov may drop files in its cwd
        out = subprocess.run(["gcov", "--json-format", "--stdout", "--branch-probabilities"] + gcdas,
                             cwd=tmp, check=True, capture_output=True, text=True).stdout
    src = os.path.join(root, "src") + os.sep
    for doc in out.splitlines():
        if not doc.startswith("{"):
            continue
        data = json.loads(doc)
        for f in data["files"]:
            path = f["file"]
            if not os.path.isabs(path):
                path = os.path.normpath(os.path.join(data.get("current_working_directory", ""), path))
            if not path.startswith(src):
                continue
            for line in f["lines"]:
                for i, b in enumerate(line["branches"]):
                    if b.get("throw"):
                        edges.add((path, line["line_number"], i))
    return edges


def main() -> int:
    info_in, info_out, build_dir, root, minimum = sys.argv[1:6]
    minimum = float(minimum)
    root = os.path.abspath(root)
    throws = throw_edges(build_dir, root)

    files = {}  # path -> {"lines": {line: count}, "brda": {(line, block, branch): hits}}
    out_lines, cur_path, cur, dropped = [], None, None, 0
    with open(info_in, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("SF:"):
                cur_path = line[3:]
                cur = files.setdefault(cur_path, {"lines": {}, "brda": {}})
            elif line.startswith("DA:") and cur is not None:
                ln, count = line[3:].split(",")[:2]
                cur["lines"][int(ln)] = cur["lines"].get(int(ln), 0) + int(count)
            elif line.startswith("BRDA:") and cur is not None:
                ln, block, branch, taken = line[5:].split(",")
                if (cur_path, int(ln), int(branch)) in throws:
                    dropped += 1
                    continue
                key = (int(ln), int(block), int(branch))
                cur["brda"][key] = cur["brda"].get(key, 0) + (0 if taken == "-" else int(taken))
            elif line.startswith(("BRF:", "BRH:")) and cur is not None:
                bf = len(cur["brda"])
                bh = sum(1 for c in cur["brda"].values() if c > 0)
                line = f"BRF:{bf}" if line.startswith("BRF:") else f"BRH:{bh}"
            elif line == "end_of_record":
                cur_path, cur = None, None
            out_lines.append(line)
    with open(info_out, "w", encoding="utf-8") as f:
        f.write("\n".join(out_lines) + "\n")

    rows, missed = [], []
    tot = [0, 0, 0, 0]
    for path in sorted(files):
        d = files[path]
        lf, lh = len(d["lines"]), sum(1 for c in d["lines"].values() if c > 0)
        bf, bh = len(d["brda"]), sum(1 for c in d["brda"].values() if c > 0)
        rel = os.path.relpath(path, root)
        rows.append((rel, lh, lf, bh, bf))
        tot = [tot[0] + lh, tot[1] + lf, tot[2] + bh, tot[3] + bf]
        try:
            with open(path, encoding="utf-8") as s:
                src = s.read().splitlines()
        except OSError:
            src = []
        for (ln, _, branch), c in sorted(d["brda"].items()):
            if c == 0:
                text = src[ln - 1].strip() if 0 < ln <= len(src) else ""
                missed.append(f"  {rel}:{ln} branch {branch}: {text}")

    def pct(h, f):
        return 100.0 * h / f if f else 100.0

    print(f"{'file':<24} {'lines':>19} {'branches':>19}")
    for rel, lh, lf, bh, bf in rows:
        print(f"{rel:<24} {lh:>5}/{lf:<5} {pct(lh, lf):6.1f}% {bh:>5}/{bf:<5} {pct(bh, bf):6.1f}%")
    print(f"{'TOTAL':<24} {tot[0]:>5}/{tot[1]:<5} {pct(tot[0], tot[1]):6.1f}% "
          f"{tot[2]:>5}/{tot[3]:<5} {pct(tot[2], tot[3]):6.1f}%")
    print(f"({dropped} exception-edge branch records left out)")
    if missed:
        print(f"branches never taken ({len(missed)}):")
        print("\n".join(missed))
    if tot[3] == 0:
        print("coverage: no branch data at all (was the build made with --coverage?)")
        return 1
    branch_pct = pct(tot[2], tot[3])
    ok = branch_pct >= minimum
    print(f"coverage: src/ branches {tot[2]}/{tot[3]} = {branch_pct:.1f}% (minimum {minimum:g}%), "
          f"lines {pct(tot[0], tot[1]):.1f}%: {'ok' if ok else 'BELOW THE MINIMUM'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
