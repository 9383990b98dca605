#!/usr/bin/env python3
"""Statements raised sent, as PostgreSQL logged them, for tests/bench/agenda.

The scratch database runs with log_min_duration_statement = 0 while a few agenda requests
are made, so the cluster's log has, for each statement raised sent (extended protocol,
unnamed statement), three lines "duration: X ms  parse|bind|execute <unnamed>: SQL", the
bind and execute ones followed by "DETAIL:  parameters: $1 = '...', ...". This reads the
log from a byte offset, keeps the lines of one database, and writes:

  OUT.json  {"agenda": {...}, "auth": {...}} for the agenda statement (the one that writes
            the 'meeting.agenda' audit rows) and the session lookup (token_hash = ...):
            each {"sql", "params", "runs": [{"parse", "bind", "execute", "total"} ms]}
            (params: those of the last execution)
  OUT.agenda.sql, OUT.auth.sql
            the statement with its parameters written in as untyped string literals, which
            PostgreSQL types exactly as it types raised's untyped text parameters

Usage: capture.py LOGFILE OFFSET DBNAME OUT
"""
import json
import re
import sys

PREFIX = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (\S*)@(\S*) ([A-Z]+):  (.*)$")
DURATION = re.compile(r"^duration: ([0-9.]+) ms  (parse|bind|execute) ([^:]*): (.*)$", re.S)


def parse_params(text):
    """'$1 = 'a''b', $2 = NULL' -> {1: "a'b", 2: None}"""
    out = {}
    i = 0
    n = len(text)
    while i < n:
        m = re.compile(r"\s*\$(\d+) = ").match(text, i)
        if not m:
            raise ValueError("cannot parse parameters at %r" % text[i:i + 40])
        k = int(m.group(1))
        i = m.end()
        if text.startswith("NULL", i):
            out[k] = None
            i += 4
        elif text[i] == "'":
            i += 1
            buf = []
            while True:
                j = text.index("'", i)
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == "'":
                    buf.append("'")
                    i = j + 2
                    continue
                i = j + 1
                break
            out[k] = "".join(buf)
        else:
            raise ValueError("unexpected parameter value at %r" % text[i:i + 40])
        if text.startswith(",", i):
            i += 1
    return out


def literal(v):
    if v is None:
        return "NULL"
    return "'" + v.replace("'", "''") + "'"


def inline(sql, params):
    def sub(m):
        k = int(m.group(1))
        if k not in params:
            raise ValueError("no value for $%d" % k)
        return literal(params[k])
    # the statements quote no '$' themselves: every $N is a parameter
    rest = re.sub(r"\$[0-9]+", "", sql)
    if "$" in rest:
        raise ValueError("a '$' that is not a parameter: cannot inline safely")
    return re.sub(r"\$([0-9]+)(?![0-9])", sub, sql)


def main():
    logfile, offset, dbname, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(logfile, "rb") as f:
        f.seek(offset)
        data = f.read().decode("utf-8", "replace")
    entries = []  # [pid, level, text]
    for line in data.split("\n"):
        m = PREFIX.match(line)
        if m:
            pid, _user, db, level, text = m.groups()
            entries.append([pid, db, level, text])
        elif entries and line:
            entries[-1][3] += "\n" + line  # a continuation line
    # per backend: parse/bind/execute of one statement, the DETAIL after bind/execute
    found = {"agenda": None, "auth": None}
    current = {}  # pid -> (what, run dict)
    last = {}  # pid -> (what, phase)
    for pid, db, level, text in entries:
        if db != dbname:
            continue
        if level == "LOG":
            m = DURATION.match(text)
            if not m:
                continue
            ms, phase, _name, sql = float(m.group(1)), m.group(2), m.group(3), m.group(4)
            if "'meeting.agenda'" in sql:
                what = "agenda"
            elif "token_hash = decode($1" in sql:
                what = "auth"
            else:
                last.pop(pid, None)
                continue
            if found[what] is None:
                found[what] = {"sql": sql, "params": None, "runs": []}
            if phase == "parse" or pid not in current or current[pid][0] != what:
                run = {"parse": 0.0, "bind": 0.0, "execute": 0.0}
                found[what]["runs"].append(run)
                current[pid] = (what, run)
            current[pid][1][phase] += ms
            if phase == "execute":
                del current[pid]
            last[pid] = (what, phase)
        elif level == "DETAIL" and text.startswith("parameters: ") and pid in last:
            what, phase = last.pop(pid)
            found[what]["params"] = parse_params(text[len("parameters: "):])
    for what, v in found.items():
        if v is None or v["params"] is None:
            sys.exit("capture.py: no %s statement with parameters in the log after byte %d "
                     "(database %s)" % (what, offset, dbname))
        for run in v["runs"]:
            run["total"] = round(run["parse"] + run["bind"] + run["execute"], 3)
        with open("%s.%s.sql" % (out, what), "w") as f:
            f.write(inline(v["sql"], v["params"]) + ";\n")
        v["params"] = {str(k): p for k, p in v["params"].items()}
    with open(out + ".json", "w") as f:
        json.dump(found, f, indent=1)


if __name__ == "__main__":
    main()
