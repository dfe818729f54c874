// The studio's JSON API: GETs, and POSTs carrying the page's token (other sites cannot read it).
const token = document.querySelector('meta[name="studio-token"]').content;

export async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

export async function get(path) {
  return answer(await fetch(path));
}

export async function post(path, body = {}) {
  return answer(await fetch(path, {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-Studio-Token': token},
    body: JSON.stringify(body),
  }));
}

// Poll a background job until it is done; onProgress(job) sees each state.
export async function waitForJob(job, onProgress = () => {}) {
  while (job.state === 'running') {
    onProgress(job);
    await new Promise((resolve) => setTimeout(resolve, 400));
    job = await get(`/api/jobs/${job.id}`);
  }
  onProgress(job);
  if (job.state === 'failed') throw new Error(`${job.title}: ${job.error}`);
  return job;
}
