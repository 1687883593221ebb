#!/usr/bin/env python3
"""Reads a Crowd endpoint with PyPI's python-crowd (`crowd`), as a script or service using it would.

    crowd_python.py BASE_URL APP PASSWORD USERNAME GROUP [CALL,...]

CALLs (default: all): get_user, user_exists, get_groups, get_nested_groups,
get_nested_group_users, get_memberships, search_user, search_group.
Prints one JSON object, call name -> result. python-crowd answers None when a call fails; the
script then exits 1 and names the call (with the status a plain request gets, for the reason).
"""
import json
import sys

import crowd
import requests

CALLS = [
    "get_user",
    "user_exists",
    "get_groups",
    "get_nested_groups",
    "get_nested_group_users",
    "get_memberships",
    "search_user",
    "search_group",
]


def main(argv):
    if len(argv) not in (6, 7):
        print(__doc__, file=sys.stderr)
        return 2
    base, app, password, user, group = argv[1:6]
    calls = argv[6].split(",") if len(argv) == 7 else CALLS
    unknown = [c for c in calls if c not in CALLS]
    if unknown:
        print(f"unknown calls {unknown}; known: {CALLS}", file=sys.stderr)
        return 2
    cs = crowd.CrowdServer(base, app, password, timeout=60)
    run = {
        "get_user": lambda: cs.get_user(user),
        "user_exists": lambda: cs.user_exists(user),
        "get_groups": lambda: cs.get_groups(user),
        "get_nested_groups": lambda: cs.get_nested_groups(user),
        "get_nested_group_users": lambda: cs.get_nested_group_users(group),
        "get_memberships": lambda: cs.get_memberships(),
        "search_user": lambda: cs.search("user", "name", user),
        "search_group": lambda: cs.search("group", "name", group),
    }
    out, failed = {}, []
    for c in calls:
        try:
            r = run[c]()
        except Exception as e:  # the library raises on transport errors and unreadable JSON
            failed.append({"call": c, "error": f"{type(e).__name__}: {e}"})
            continue
        if r is None:
            failed.append({"call": c, "error": "python-crowd returned None (the request failed)", "probe": probe(base, app, password)})
        else:
            out[c] = r
    if failed:
        print(json.dumps({"results": out, "failed": failed}, indent=1, default=str))
        print(f"python-crowd: {len(failed)} call(s) failed: {', '.join(f['call'] for f in failed)}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1, default=str))
    return 0


def probe(base, app, password):
    """The status and headers a plain authenticated GET of the API root gets: tells a 401 from a
    missing server."""
    try:
        r = requests.get(base.rstrip("/") + "/rest/usermanagement/1/search", auth=(app, password), timeout=10)
        return {"status": r.status_code, "x-embedded-crowd-version": r.headers.get("X-Embedded-Crowd-Version")}
    except Exception as e:
        return {"error": str(e)}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
