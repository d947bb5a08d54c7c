// The public REST API (same origin): every request with the bearer token; errors as
// ApiProblem (problem+json: code, detail, errors[].field, Retry-After).

export class ApiProblem extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "unknown";
    this.errors = (body && body.errors) || [];
    this.retryAfter = retryAfter; // seconds, or null
  }
}

export function retryAfterSeconds(response) {
  const value = Number(response.headers.get("Retry-After"));
  return Number.isFinite(value) && value > 0 ? value : null;
}

export class Api {
  constructor(getToken, onUnauthorized) {
    this.getToken = getToken;
    this.onUnauthorized = onUnauthorized;
  }

  // The raw fetch (streams read its body themselves).
  async raw(path, { method = "GET", body, headers = {}, signal } = {}) {
    const all = { Authorization: `Bearer ${this.getToken()}`, ...headers };
    if (body !== undefined) all["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
    if (response.status === 401) this.onUnauthorized();
    return response;
  }

  // JSON answer `{data, response}`; anything not 2xx throws an ApiProblem.
  async request(path, options = {}) {
    const response = await this.raw(path, options);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiProblem(response.status, data, retryAfterSeconds(response));
    return { data, response };
  }
}

export function waitText(seconds) {
  if (seconds === null || seconds === undefined) return "later";
  if (seconds < 90) return `in ${Math.ceil(seconds)} seconds`;
  const at = new Date(Date.now() + seconds * 1000);
  return `after ${at.toLocaleString()}`;
}
