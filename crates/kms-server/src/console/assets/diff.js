// A line diff (longest common subsequence), for showing a policy change before it is saved.

/** [{op: ' ' | '+' | '-', line}] turning `before` into `after`. */
export function lineDiff(before, after) {
  const a = before.split('\n');
  const b = after.split('\n');
  const n = a.length;
  const m = b.length;
  // Policies are at most 128 KiB; past a few thousand lines each, fall back to "all changed".
  if (n * m > 4_000_000) return [...a.map((line) => ({ op: '-', line })), ...b.map((line) => ({ op: '+', line }))];
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({ op: ' ', line: a[i] }); i += 1; j += 1; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) { out.push({ op: '-', line: a[i] }); i += 1; }
    else { out.push({ op: '+', line: b[j] }); j += 1; }
  }
  while (i < n) { out.push({ op: '-', line: a[i] }); i += 1; }
  while (j < m) { out.push({ op: '+', line: b[j] }); j += 1; }
  return out;
}

/** The diff with runs of unchanged lines longer than 2 × `context` folded into one
 * `{op: '…', line: 'N unchanged lines'}` entry, keeping `context` lines around each change. */
export function foldUnchanged(diff, context = 3) {
  const out = [];
  let i = 0;
  while (i < diff.length) {
    if (diff[i].op !== ' ') { out.push(diff[i]); i += 1; continue; }
    let j = i;
    while (j < diff.length && diff[j].op === ' ') j += 1;
    const run = diff.slice(i, j);
    const head = i === 0 ? 0 : context;
    const tail = j === diff.length ? 0 : context;
    if (run.length > head + tail + 1) {
      out.push(...run.slice(0, head));
      out.push({ op: '…', line: `${run.length - head - tail} unchanged lines` });
      out.push(...run.slice(run.length - tail));
    } else {
      out.push(...run);
    }
    i = j;
  }
  return out;
}
