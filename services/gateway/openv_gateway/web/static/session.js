// Who is signed in: the access token lives in sessionStorage (this tab only), never in a
// URL. Sign-in: Supabase Auth's REST API (password, magic link) or, on the local stack
// only, the gateway's "sign in as" endpoint.

const KEY = "openv.session";

export function current() {
  try {
    const session = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (session && session.token && session.expiresAt > Date.now()) return session;
  } catch {
    // a damaged entry: signed out
  }
  return null;
}

function keep(token, user, expiresInS) {
  const session = { token, user, expiresAt: Date.now() + expiresInS * 1000 };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

async function failed(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  const message = body.error_description || body.msg || body.message || body.detail;
  return new Error(message || `sign-in failed (HTTP ${response.status})`);
}

export async function signInLocal(userId) {
  const response = await fetch("/app/local-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: userId }),
  });
  if (!response.ok) throw await failed(response);
  const body = await response.json();
  return keep(body.access_token, userId, body.expires_in);
}

export async function signInPassword(config, email, password) {
  const response = await fetch(`${config.supabase_url}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { apikey: config.supabase_anon_key, "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw await failed(response);
  const body = await response.json();
  return keep(body.access_token, (body.user && body.user.email) || email, body.expires_in);
}

export async function sendMagicLink(config, email) {
  const back = encodeURIComponent(`${location.origin}/`);
  const response = await fetch(`${config.supabase_url}/auth/v1/otp?redirect_to=${back}`, {
    method: "POST",
    headers: { apikey: config.supabase_anon_key, "Content-Type": "application/json" },
    body: JSON.stringify({ email, create_user: true }),
  });
  if (!response.ok) throw await failed(response);
}

// A magic link comes back as `/#access_token=...&expires_in=...`: keep it and clear the URL.
export function fromRedirect() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("access_token");
  if (!token) return null;
  history.replaceState(null, "", location.pathname);
  let user = "you";
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    user = claims.email || claims.sub || user;
  } catch {
    // an opaque token: the API decides
  }
  return keep(token, user, Number(params.get("expires_in")) || 3600);
}
