// What both browser test files need: waiting, unique names, and the demo systems' test-only
// admin API (customers and orders of a run's own, so a rerun on the same stack starts clean).

import assert from 'node:assert/strict';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function unique(prefix) {
  return `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

export async function demo(ctx, path, body) {
  assert.ok(ctx.demoUrl, 'DEMO_URL is not set (the stack ready file has it)');
  const res = await fetch(ctx.demoUrl + path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, `${path}: ${await res.text()}`);
}
