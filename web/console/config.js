// LOCAL DEVELOPMENT configuration of the agent console: replace this file when you deploy.
//
// It is the one file a company edits (docs/console.md, "Give your agents the console"). It must
// export:
//   apiBase  the chat API's base URL (the stack's ChatApiUrl output), without a trailing slash;
//   token({ refresh })  an async function returning the signed-in agent's JWT from your own
//            login (its role claim `agent` or `admin`, its tenant claim set); `refresh: true`
//            after the API answered 401, so return a newly issued token then, not a cached one.
//
// What follows works only against the local stack (./dev/up): it asks the local web server's
// /dev/token endpoint, which mints tokens signed with the local stack's development key (dev/devtoken.py);
// nothing of it exists in AWS.
// The deploy step (docs/console.md) does not upload this file; yours goes in its place.

// The local web server (dev/web_server.py) says which stack it was started with.
const local = await (await fetch("/dev/config.json", { cache: "no-store" })).json();
export const apiBase = local.chat_url;

// Another agent, to try two at once: console/?agent=agent_bo (kept for the tab, so reloads and
// #conversation= links stay that agent).
const given = new URLSearchParams(location.search).get("agent");
if (given) sessionStorage.setItem("switchboard-console:agent", given);
const agent = given || sessionStorage.getItem("switchboard-console:agent") || "agent_ann";

export async function token({ refresh } = {}) {
  // Dev tokens live an hour and are minted anew on every call, so `refresh` needs nothing here.
  // A real login would return its cached token unless refresh is true.
  void refresh;
  const res = await fetch(`/dev/token?sub=${encodeURIComponent(agent)}&role=agent`, { cache: "no-store" });
  if (!res.ok) throw new Error(`the local /dev/token answered ${res.status}`);
  return (await res.json()).token;
}
