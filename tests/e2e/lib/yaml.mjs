// A minimal YAML writer for the configs the tests generate: mappings, sequences, strings, numbers,
// booleans and null. Strings are written double-quoted (JSON string syntax is valid YAML), so no
// value can change type or meaning on the way.

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} to YAML`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return JSON.stringify(v);
  throw new Error(`cannot write ${typeof v} to YAML`);
}

// Plain keys stay plain (readable in a failing test's log); anything else is quoted.
function key(k) { return /^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(k) ? k : JSON.stringify(k); }

function isCollection(v) { return v !== null && typeof v === 'object'; }

function emit(v, indent, lines) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) throw new Error('empty sequences are written inline by the caller');
    for (const item of v) {
      if (isCollection(item) && !isEmpty(item)) {
        const sub = [];
        emit(item, indent + 2, sub);
        // The first line of the item goes after "- ".
        lines.push(`${pad}- ${sub[0].slice(indent + 2)}`);
        lines.push(...sub.slice(1));
      } else {
        lines.push(`${pad}- ${inline(item)}`);
      }
    }
    return;
  }
  for (const [k, val] of Object.entries(v)) {
    if (isCollection(val) && !isEmpty(val)) {
      lines.push(`${pad}${key(k)}:`);
      emit(val, indent + 2, lines);
    } else {
      lines.push(`${pad}${key(k)}: ${inline(val)}`);
    }
  }
}

function isEmpty(v) { return Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0; }

function inline(v) {
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[${v.map(inline).join(', ')}]`;
  if (isCollection(v)) {
    const entries = Object.entries(v);
    return entries.length === 0 ? '{}'
      : `{${entries.map(([k, x]) => `${key(k)}: ${inline(x)}`).join(', ')}}`;
  }
  return scalar(v);
}

export function toYaml(value) {
  if (!isCollection(value) || Array.isArray(value)) throw new Error('top level must be a mapping');
  const lines = [];
  emit(value, 0, lines);
  return lines.join('\n') + '\n';
}
