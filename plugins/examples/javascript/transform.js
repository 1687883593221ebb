// Example Roster transform, in JavaScript: **contractors**.
//
// Built into a WebAssembly component by `jco componentize` (ComponentizeJS, StarlingMonkey) for
// the `transform-plugin` world of `wit/roster.wit`; see README.md. It does exactly what the Rust
// example (../rust/src/lib.rs) and the Python example (../python/app.py) do, message for message:
//
// - A user whose `employeeType` attribute (setting `attribute`) is one of `values` (default
//   ["Contractor"], compared ignoring case and surrounding spaces) is a contractor: their username
//   gets the suffix `-ext` (setting `suffix`), once; an inactive contractor is filtered out when
//   `drop_inactive` is set (the default).
// - A user whose attribute has two different values cannot be evaluated: that record gets an
//   `error` and is skipped; the rest of the batch goes on.
// - A group whose name starts with `Vendor-` (setting `vendor_prefix`) is a vendor group: it is
//   kept and fans out to the group `contractors` too (setting `contractors_group`). A vendor group
//   with nothing after the prefix gets an `error`.
// - Everything else passes unchanged with no reason.
//
// How WIT types look from JavaScript: records are objects with camelCase fields (`displayName`),
// `option<T>` is the value or `undefined`, `list<tuple<string, string>>` is an array of
// two-element arrays, a `result` export returns its `ok` value and throws its `err` value, and a
// variant such as `plugin-error` is `{ tag: 'config', val: 'message' }`.

const SCHEMA = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "attribute": {"type": "string", "minLength": 1, "default": "employeeType",
      "description": "The user attribute that says whether someone is a contractor"},
    "values": {"type": "array", "items": {"type": "string"}, "minItems": 1, "default": ["Contractor"],
      "description": "Values of that attribute that mean contractor, compared ignoring case and surrounding spaces"},
    "suffix": {"type": "string", "minLength": 1, "default": "-ext",
      "description": "Appended to a contractor's username, once"},
    "drop_inactive": {"type": "boolean", "default": true,
      "description": "Filter out contractors whose account is disabled"},
    "vendor_prefix": {"type": "string", "minLength": 1, "default": "Vendor-",
      "description": "Groups whose name starts with this (case-sensitive) are vendor groups"},
    "contractors_group": {"type": "string", "minLength": 1, "default": "contractors",
      "description": "Every vendor group's members also join this Bitbucket group"}
  }
}`;

// The settings names, in the order error messages list them.
const KNOWN = ['attribute', 'values', 'suffix', 'drop_inactive', 'vendor_prefix', 'contractors_group'];

// A `plugin-error` of kind `config`: the host refuses the step before any record is touched.
function invalid(message) {
  return { tag: 'config', val: `invalid settings: ${message}` };
}

function text(fields, name) {
  const v = fields[name];
  if (typeof v !== 'string' || v === '') throw invalid(`\`${name}\` must be a non-empty string`);
  return v;
}

// Parses and checks the settings; an empty string means `{}`.
function parseSettings(raw) {
  const s = {
    attribute: 'employeeType',
    values: ['contractor'], // lower-cased and trimmed
    suffix: '-ext',
    dropInactive: true,
    vendorPrefix: 'Vendor-',
    contractorsGroup: 'contractors',
  };
  if (raw.trim() === '') return s;
  let fields;
  try {
    fields = JSON.parse(raw);
  } catch (e) {
    throw invalid(`not JSON: ${e.message}`);
  }
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
    throw invalid('expected a JSON object');
  }
  // Checked in a fixed order, so every language reports the same mistake first.
  const unknown = Object.keys(fields).filter((k) => !KNOWN.includes(k));
  if (unknown.length > 0) {
    unknown.sort();
    const names = unknown.map((k) => `\`${k}\``).join(', ');
    throw invalid(`unknown setting ${names} (known: ${KNOWN.join(', ')})`);
  }
  const has = (name) => Object.prototype.hasOwnProperty.call(fields, name);
  if (has('attribute')) s.attribute = text(fields, 'attribute');
  if (has('values')) {
    const v = fields.values;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) {
      throw invalid('`values` must be a non-empty list of strings');
    }
    s.values = v.map((x) => x.trim().toLowerCase());
  }
  if (has('suffix')) s.suffix = text(fields, 'suffix');
  if (has('drop_inactive')) {
    if (typeof fields.drop_inactive !== 'boolean') throw invalid('`drop_inactive` must be true or false');
    s.dropInactive = fields.drop_inactive;
  }
  if (has('vendor_prefix')) s.vendorPrefix = text(fields, 'vendor_prefix');
  if (has('contractors_group')) s.contractorsGroup = text(fields, 'contractors_group');
  return s;
}

// What becomes of one user: a `user-outcome` record.
function mapUser(s, user) {
  // Multi-valued attributes appear once per value: collect the distinct ones (ignoring case).
  const distinct = [];
  for (const [name, raw] of user.attributes) {
    const value = raw.trim();
    if (name === s.attribute && !distinct.some((d) => d.toLowerCase() === value.toLowerCase())) {
      distinct.push(value);
    }
  }
  if (distinct.length > 1) {
    return {
      user: undefined,
      reason: undefined,
      error: `${s.attribute} has ${distinct.length} different values (${distinct.join(', ')}); expected one`,
    };
  }
  if (distinct.length === 0 || !s.values.includes(distinct[0].toLowerCase())) {
    return { user, reason: undefined, error: undefined };
  }
  const why = `contractor (${s.attribute}=${distinct[0]})`;
  if (!user.active && s.dropInactive) {
    return { user: undefined, reason: `${why}: inactive, dropped`, error: undefined };
  }
  if (user.username.endsWith(s.suffix)) {
    return { user, reason: `${why}: username already ends with ${s.suffix}`, error: undefined };
  }
  const renamed = user.username + s.suffix;
  return {
    user: { ...user, username: renamed },
    reason: `${why}: ${user.username} → ${renamed}`,
    error: undefined,
  };
}

// What becomes of one group: a `group-outcome` record.
function mapGroup(s, group) {
  if (!group.name.startsWith(s.vendorPrefix)) {
    return { groups: [group], reason: undefined, error: undefined };
  }
  const vendor = group.name.slice(s.vendorPrefix.length).trim();
  if (vendor === '') {
    return {
      groups: [],
      reason: undefined,
      error: `vendor group "${group.name}" has no vendor name after "${s.vendorPrefix}"`,
    };
  }
  // Fan-out: the host gives every resulting group the input group's members.
  const everyone = { id: group.id, name: s.contractorsGroup, description: undefined, attributes: [] };
  return {
    groups: [group, everyone],
    reason: `vendor group ${vendor}: members also join ${s.contractorsGroup}`,
    error: undefined,
  };
}

// The exported `transform` interface.
export const transform = {
  describe() {
    return {
      name: 'contractors-javascript',
      version: '0.1.0',
      description: 'Contractors get a username suffix; vendor groups also feed a contractors group',
      settingsSchema: SCHEMA,
    };
  },

  mapUsers(settings, users) {
    const s = parseSettings(settings);
    return users.map((u) => mapUser(s, u));
  },

  mapGroups(settings, groups) {
    const s = parseSettings(settings);
    return groups.map((g) => mapGroup(s, g));
  },
};
