#!/usr/bin/env python3
"""Statement capture for tests/bench/actions: the list statement exactly as raised sent it.

    capture.py --log POSTGRES_LOG --offset BYTES --out DIR

Reads the PostgreSQL log from BYTES on (log_min_duration_statement = 0 was set on the
scratch database; log_line_prefix '%m [%p] ', optionally followed by 'user@db ') and takes the last "execute <name>:" (raised prepares each statement once per connection: "s<k>")
statement that starts with "WITH rows AS (" and writes 'action.read' (GET /v1/actions),
with its "DETAIL:  parameters:" line from the same backend. Writes, with every $n replaced
by its value as a literal (NULL stays NULL), so psql and pgbench run exactly what the
server ran:
  DIR/full.sql   the whole statement: rows (with the JSON document), shown, the audit
                 INSERT (one row per young person shown) and the final SELECT
  DIR/rows.sql   the anchor: the statement's own "rows" CTE body as a statement -- the
                 same FROM/JOINs, visibility predicate, filters, ORDER BY and LIMIT
                 ($2 + 1 = 51), selecting the same columns and JSON document; no audit
  DIR/plain.sql  the same rows with "SELECT a.*" instead of the document and cursor
  DIR/params.txt the parameters, one "$n = value" a line
pgbench (before PostgreSQL 17) treats ":name" in any -M extended script as a variable, even
inside a string literal, so every literal holding a colon is written as an E'' literal with
the colon as \\x3a: the same constant once parsed.
Standard library only. Exit 1 (with a reason on stderr) when nothing matches.
"""

import argparse
import os
import re
import sys

PARAM_RE = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
EXEC_RE = re.compile(r"execute (?:<unnamed>|s\d+): ")
LINE_RE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (?:\S*@\S* )?(\w+):  (.*)$")


def literals_without_colons(sql: str) -> str:
    """Rewrite every '...' literal that contains ':' as E'...' with \\x3a."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c != "'":
            out.append(c)
            i += 1
            continue
        # a standard literal (the server's SQL has no E'' literals of its own)
        j, buf = i + 1, []
        while j < n:
            if sql[j] == "'" and j + 1 < n and sql[j + 1] == "'":
                buf.append("'")
                j += 2
            elif sql[j] == "'":
                break
            else:
                buf.append(sql[j])
                j += 1
        if j >= n:
            raise SystemExit("capture.py: unterminated string literal in the statement")
        prev = sql[i - 1] if i > 0 else " "
        text = "".join(buf)
        if ":" in text and prev not in "Ee":
            esc = text.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\x3a")
            out.append("E'" + esc + "'")
        else:
            out.append("'" + text.replace("'", "''") + "'")
        i = j + 1
    return "".join(out)


def inline(sql: str, params: dict) -> str:
    def sub(m):
        k = int(m.group(1))
        if k not in params:
            raise SystemExit("capture.py: no value logged for $%d" % k)
        return params[k]

    # longest first is implicit: \$(\d+) takes all the digits
    return re.sub(r"\$(\d+)", sub, sql)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--offset", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    with open(a.log, "rb") as f:
        f.seek(a.offset)
        lines = f.read().decode("utf-8", errors="replace").splitlines()

    found = None
    for i, line in enumerate(lines):
        m = LINE_RE.match(line)
        if not m or m.group(2) != "LOG":
            continue
        x = EXEC_RE.search(m.group(3))
        if x is None:
            continue
        stmt = m.group(3)[x.end():]
        if not stmt.startswith("WITH rows AS (") or "'action.read'" not in stmt:
            continue
        pid = m.group(1)
        for later in lines[i + 1:i + 40]:
            d = LINE_RE.match(later)
            if d and d.group(1) == pid and d.group(2) == "DETAIL" and \
                    d.group(3).lower().startswith("parameters: "):
                found = (stmt, d.group(3)[len("parameters: "):])
                break
    if found is None:
        print("capture.py: no GET /v1/actions statement with its parameters in the log "
              "after byte %d" % a.offset, file=sys.stderr)
        return 1
    stmt, ptext = found
    params = {int(m.group(1)): m.group(2) for m in PARAM_RE.finditer(ptext)}

    start = stmt.find("WITH rows AS (")
    end = stmt.find("), shown AS (")
    if start != 0 or end < 0:
        print("capture.py: the statement no longer has the shape WITH rows AS (...), shown AS "
              "(...): update capture.py", file=sys.stderr)
        return 1
    rows = stmt[len("WITH rows AS ("):end].strip()
    c = rows.find(" AS _cursor ")
    f = rows.find("FROM actions a ", c)
    if not rows.startswith("SELECT ") or c < 0 or f < 0:
        print("capture.py: the rows CTE no longer reads 'SELECT ... AS _cursor FROM actions a': "
              "update capture.py", file=sys.stderr)
        return 1
    plain = "SELECT a.* " + rows[f:]

    os.makedirs(a.out, exist_ok=True)
    for name, sql in (("full", stmt), ("rows", rows), ("plain", plain)):
        with open(os.path.join(a.out, name + ".sql"), "w") as out:
            out.write(literals_without_colons(inline(sql, params)) + ";\n")
    with open(os.path.join(a.out, "params.txt"), "w") as out:
        for k in sorted(params):
            out.write("$%d = %s\n" % (k, params[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
