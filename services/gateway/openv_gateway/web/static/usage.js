// The usage meter: active jobs of the maximum, seconds used of the monthly quota, reset date.

export function setUpUsage(root, api) {
  let periodEnd = null;
  const q = (selector) => root.querySelector(selector);

  async function refresh() {
    try {
      const { data } = await api.request("/v1/usage");
      periodEnd = new Date(data.period_end);
      q("#meter-jobs").max = Math.max(1, data.max_active_jobs);
      q("#meter-jobs").value = data.active_jobs;
      q("#jobs-text").textContent = `${data.active_jobs} of ${data.max_active_jobs}`;
      q("#meter-seconds").max = Math.max(1, data.quota_seconds);
      q("#meter-seconds").value = Math.min(data.used_seconds, data.quota_seconds);
      q("#seconds-text").textContent =
        `${data.used_seconds.toFixed(1)} of ${data.quota_seconds.toFixed(0)} s`;
      q("#reset-text").textContent = `The quota resets on ${periodEnd.toLocaleDateString()}.`;
    } catch {
      // the meter keeps its last values; the next change refreshes it
    }
  }

  return { refresh, resetsAt: () => periodEnd };
}
