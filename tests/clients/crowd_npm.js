#!/usr/bin/env node
// Reads a Crowd endpoint with npm's atlassian-crowd-client, as a Node service using it would.
//
//   node crowd_npm.js BASE_URL APP PASSWORD USERNAME GROUP [CALL,...]
//
// CALLs (default: every one but `search`): user, user_groups, group, group_users,
// group_has_user, memberships, search (CQL through GET /search, which a server may refuse).
// NODE_PATH names the folder holding node_modules/atlassian-crowd-client (npm --prefix).
// Prints one JSON object, call name -> result; exits 1 naming every call that failed, with the
// library's error type (Crowd's reason) and message.
'use strict';

const CALLS = ['user', 'user_groups', 'group', 'group_users', 'group_has_user', 'memberships', 'search'];
const DEFAULT = CALLS.filter((c) => c !== 'search');

async function main(argv) {
  if (argv.length !== 5 && argv.length !== 6) {
    console.error('usage: node crowd_npm.js BASE_URL APP PASSWORD USERNAME GROUP [CALL,...]');
    return 2;
  }
  const [base, app, password, user, group] = argv;
  const calls = argv.length === 6 ? argv[5].split(',') : DEFAULT;
  const unknown = calls.filter((c) => !CALLS.includes(c));
  if (unknown.length) {
    console.error(`unknown calls ${unknown}; known: ${CALLS}`);
    return 2;
  }
  const CrowdClient = require('atlassian-crowd-client');
  const crowd = new CrowdClient({
    baseUrl: base,
    application: { name: app, password: password },
    // Attribute values are plain strings here, not the JSON this library writes by default.
    attributesParser: (v) => v,
  });
  const run = {
    user: () => crowd.user.get(user, true),
    user_groups: () => crowd.user.groups.list(user),
    group: () => crowd.group.get(group),
    group_users: () => crowd.group.users.list(group, false, 0, 1000, true),
    group_has_user: () => crowd.group.users.get(group, user),
    memberships: () => crowd.group.membership(),
    search: () => crowd.search.user(`name = "${user}"`, true),
  };
  const out = {};
  const failed = [];
  for (const c of calls) {
    try {
      out[c] = await run[c]();
    } catch (e) {
      failed.push({ call: c, type: e.type || e.name, error: e.message });
    }
  }
  if (failed.length) {
    console.log(JSON.stringify({ results: out, failed }, null, 1));
    console.error(`atlassian-crowd-client: ${failed.length} call(s) failed: ${failed.map((f) => `${f.call} (${f.type}: ${f.error})`).join(', ')}`);
    return 1;
  }
  console.log(JSON.stringify(out, null, 1));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`atlassian-crowd-client: ${e.stack || e}`);
    process.exit(1);
  },
);
